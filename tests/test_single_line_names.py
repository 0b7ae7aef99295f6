"""Names and titles are one line: a CR/LF (or another control character) is refused wherever a name is set (the API,
the admin, the sign-up and portal forms, the commands), and an email whose subject is built from a name saved
before the rule still goes out (it used to be a BadHeaderError: every portal join of that program was a 500)."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from programs.models import Participant, Program, ProgramText
from referral_saas.tenancy.models import ApiKey, Merchant
from referral_saas.validators import SingleLineCharField, single_line, validate_single_line
from tests.factories import ProgramFactory
from tests.programs.test_program_admin import VALID as VALID_PROGRAM

pytestmark = pytest.mark.django_db

BAD = [
    "Anna\r\nBcc: victim@example.com",
    "Anna\nK.",
    "Anna\rK.",
    "Anna\tK.",
    "Anna\x00",
    "Anna\x7f",
    "Anna\x85K.",  # NEL, a C1 control
    "Anna\u2028K.",  # line separator
    "Anna\u2029K.",  # paragraph separator
    "Anna\u202eK.",  # right-to-left override
]
GOOD = ["Anna", "Anna K.", "Łucja Żółć", "Ștefan", "Анна", "Zoë 🎉", "O'Brien & Co. — shop"]


@pytest.mark.parametrize("value", BAD)
def test_the_rule_refuses_control_characters(value):
    with pytest.raises(ValidationError):
        validate_single_line(value)


@pytest.mark.parametrize("value", GOOD)
def test_the_rule_accepts_names_in_every_script(value):
    validate_single_line(value)


def test_single_line_makes_any_text_a_safe_subject():
    assert single_line("Your link to Spring\r\nBcc: x@y.example") == "Your link to Spring Bcc: x@y.example"
    assert single_line("a\u2028b\x00c\t d") == "a b c d"


NAMED_MODELS = [
    "tenancy.Merchant",
    "tenancy.ApiKey",
    "programs.Program",
    "programs.ProgramVariant",
    "programs.ProgramText",
    "programs.Participant",
    "rewards.RewardRule",
    "rewards.CatalogItem",
    "rewards.CouponPool",
]


@pytest.mark.parametrize("label", NAMED_MODELS)
def test_every_name_field_carries_the_rule(label):
    field = apps.get_model(label)._meta.get_field("name")
    assert isinstance(field, SingleLineCharField)
    with pytest.raises(ValidationError):
        field.clean("Spring\r\nfriends", None)


# --- the API ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Anna\r\nBcc: victim@example.com", "Anna\u2028K.", "Anna\x00"])
def test_the_participants_api_refuses_a_name_with_a_line_break_naming_the_field(tenant, program, name):
    response = tenant.api.post(
        "/api/v1/participants", {"program": program.slug, "external_id": "c-1", "name": name}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["name"]
    assert "one line" in error["fields"]["name"][0]
    assert not Participant.objects.for_merchant(tenant.merchant).exists()


def test_the_participants_api_still_takes_names_in_every_script(tenant, program):
    response = tenant.api.post(
        "/api/v1/participants", {"program": program.slug, "external_id": "c-1", "name": "Łucja Żółć"}, format="json"
    )
    assert response.status_code == 201


def test_the_service_refuses_what_no_form_checked(tenant, program):
    from referral_saas.errors import ValidationFailed
    from tracking.services import participant_upsert

    with pytest.raises(ValidationFailed) as caught:
        participant_upsert(merchant=tenant.merchant, livemode=True, program=program, external_id="c-1", name="A\nB")
    assert list(caught.value.fields) == ["name"]


# --- the admin, the sign-up form, the portal ------------------------------------------------------------------------


def _field_errors(response, field: str) -> list[str]:
    form = response.context["adminform"].form if "adminform" in response.context else response.context["form"]
    return [str(e) for e in form.errors.get(field, [])]


def test_the_admin_refuses_a_program_name_with_a_line_break(tenant):
    response = tenant.admin.post("/admin/programs/program/add/", {**VALID_PROGRAM, "name": "Spring\r\nfriends"})
    assert response.status_code == 200
    assert "one line" in " ".join(_field_errors(response, "name"))
    assert not Program.objects.for_merchant(tenant.merchant).exists()


def test_the_admin_refuses_a_translated_program_name_with_a_line_break(tenant):
    response = tenant.admin.post("/admin/programs/program/add/", {**VALID_PROGRAM, "texts-0-name": "Wiosna\nX"})
    assert response.status_code == 200
    assert "one line" in response.content.decode()
    assert not ProgramText.objects.for_merchant(tenant.merchant).exists()


def test_the_admin_refuses_a_shop_name_with_a_line_break(tenant):
    url = f"/admin/tenancy/shopsettings/{tenant.merchant.pk}/change/"
    response = tenant.admin.post(
        url, {"name": "Alpha\r\nShop", "default_currency": "EUR", "timezone": "UTC", "default_language": "en"}
    )
    assert response.status_code == 200
    assert "one line" in " ".join(_field_errors(response, "name"))
    tenant.merchant.refresh_from_db()
    assert tenant.merchant.name == "Alpha Shop"


def test_the_admin_refuses_an_api_key_name_with_a_line_break(tenant):
    response = tenant.admin.post("/admin/tenancy/apikey/add/", {"name": "Till\u20282", "mode": "test"})
    assert response.status_code == 200
    assert "one line" in " ".join(_field_errors(response, "name"))
    assert not ApiKey.objects.for_merchant(tenant.merchant).filter(name__startswith="Till").exists()


def test_sign_up_refuses_a_shop_name_with_a_line_break(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@shop.example",
            "password1": "Unusual-pass-2026",
            "password2": "Unusual-pass-2026",
            "shop_name": "New\r\nShop",
            "default_currency": "EUR",
            "default_language": "en",
        },
    )
    assert response.status_code == 200
    assert "one line" in " ".join(_field_errors(response, "shop_name"))
    assert not Merchant.objects.filter(name__startswith="New").exists()


def test_the_portal_join_form_refuses_a_name_with_a_line_break(client, program):
    response = client.post(
        f"/en/p/{program.merchant.slug}/{program.slug}/join/",
        {"email": "kasia@example.pl", "name": "Kasia\nBcc: x@y.example", "accept_terms": "on"},
    )
    assert response.status_code == 400
    assert "one line" in " ".join(_field_errors(response, "name"))
    assert mail.outbox == []


# --- commands ---------------------------------------------------------------------------------------------------


def test_createmerchant_refuses_a_name_with_a_line_break():
    with pytest.raises(CommandError, match="name: Must be one line"):
        call_command("createmerchant", "--name", "Shop\nX", "--owner-email", "o@shop.example")
    assert not Merchant.objects.exists()


def test_createapikey_refuses_a_name_with_a_tab(tenant):
    with pytest.raises(CommandError, match="name: Must be one line"):
        call_command("createapikey", "--merchant", tenant.merchant.slug, "--name", "a\tb")


# --- rows saved before the rule ---------------------------------------------------------------------------------


def test_a_program_and_shop_saved_with_line_breaks_still_let_customers_join(client, tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="friends", name="x", default_language="en")
    Program.objects.for_merchant(tenant.merchant).filter(pk=program.pk).update(name="Spring\r\nBcc: victim@x.example")
    Merchant.objects.filter(pk=tenant.merchant.pk).update(name="Alpha\nShop")

    response = client.post(
        f"/en/p/{tenant.merchant.slug}/friends/join/",
        {"email": "kasia@example.pl", "name": "Kasia", "accept_terms": "on"},
    )

    assert response.status_code == 200
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Your link to Spring Bcc: victim@x.example"
    assert mail.outbox[0].recipients() == ["kasia@example.pl"]
    assert "\n" not in mail.outbox[0].message()["Subject"]


def test_a_shop_saved_with_a_line_break_can_still_invite_a_teammate(tenant, django_capture_on_commit_callbacks):
    Merchant.objects.filter(pk=tenant.merchant.pk).update(name="Alpha\r\nShop")
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.admin.post("/admin/tenancy/invitation/add/", {"email": "t@x.example", "role": "analyst"})
    assert response.status_code == 302
    assert [m.subject for m in mail.outbox] == ["You are invited to join Alpha Shop on Referral SaaS"]
    assert re.search(r"/accounts/invitations/\S+/", mail.outbox[0].body)


def test_a_second_client_sees_the_form_error_in_its_language(program):
    response = Client().post(
        f"/pl/p/{program.merchant.slug}/{program.slug}/join/",
        {"email": "kasia@example.pl", "name": "Kasia\nX", "accept_terms": "on"},
    )
    assert response.status_code == 400
    errors = " ".join(_field_errors(response, "name"))
    assert errors
    assert "one line" not in errors  # translated


def test_reward_email_subjects_from_old_rows_are_one_line(tenant):
    from types import SimpleNamespace

    from rewards.models import Notification
    from rewards.services.notify import _subject

    context = {"merchant": SimpleNamespace(name="Alpha\r\nShop"), "program": SimpleNamespace(name="Spring\u2028X")}
    for kind in Notification.Kind.values:
        subject = _subject(kind, context)
        assert not any(char in subject for char in "\r\n\u2028"), subject
