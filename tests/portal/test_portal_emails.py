"""Addresses in the portal and the admin: invites take plain addresses only, compare them in their normalised form
(never yourself, each friend once, however spelled), and mail goes to the address as typed."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail

from portal.tasks import send_invites
from programs.models import Invite, Participant
from referral_saas.celery import app as celery_app
from tests.factories import join
from tests.portal.helpers import invite_task_kwargs
from tests.portal.test_portal import _base, _join_and_sign_in

pytestmark = pytest.mark.django_db

EXPANDING_DOMAIN = "a@" + "\ufdfa" * 14 + ".pl"  # NFKC makes this domain 250+ characters, with spaces


def _invite(client, program, emails: str):
    return client.post(_base(program) + "invite/", {"emails": emails}, HTTP_ACCEPT_LANGUAGE="en")


def _invites(program) -> list[str]:
    return sorted(Invite.objects.for_merchant(program.merchant).values_list("email", flat=True))


@pytest.mark.parametrize(
    "address",
    [
        "f" * 300 + "@x.pl",  # over-long: was a 500
        EXPANDING_DOMAIN,
        "a@[127.0.0.1]",
        "a@127.0.0.1",
        "Friend<friend@x.pl>",
    ],
)
def test_an_invite_to_an_address_no_one_could_have_is_refused_at_the_field(client, program, address):
    _join_and_sign_in(client, program)

    response = _invite(client, program, f"good@x.example, {address}")

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_emails_error"' in html
    assert "is not an email address" in html
    assert "good@x.example, " in html  # what was typed is still there
    assert _invites(program) == []


@pytest.mark.parametrize(
    ("yourself", "error"),
    [
        ("Kasia<kasia@example.pl>", b"is not an email address"),  # display-name syntax: not a plain address
        ("Kasia+friend@Example.pl", b"cannot invite yourself"),
        ("kasia+x@example.pl", b"cannot invite yourself"),
    ],
)
def test_you_cannot_invite_yourself_under_another_spelling(client, program, yourself, error):
    _join_and_sign_in(client, program)

    response = _invite(client, program, yourself)

    assert response.status_code == 400
    assert error in response.content
    assert _invites(program) == []


def test_three_spellings_of_one_inbox_are_one_friend_in_one_submission_and_later(client, program):
    _join_and_sign_in(client, program)

    first = _invite(client, program, "Anna.K@Gmail.com, annak@gmail.com, anna.k+x@gmail.com, jan+a@outlook.com")
    again = _invite(client, program, "anna.k+y@googlemail.com, jan@outlook.com")

    assert (first.status_code, again.status_code) == (302, 302)
    assert _invites(program) == ["Anna.K@Gmail.com", "jan+a@outlook.com"]  # the first spelling, as typed


def test_an_invite_goes_to_the_address_as_typed(client, program, django_capture_on_commit_callbacks):
    _join_and_sign_in(client, program)

    with mock.patch.object(celery_app, "send_task") as send_task, django_capture_on_commit_callbacks(execute=True):
        assert _invite(client, program, "Bob+news@Outlook.com").status_code == 302
    mail.outbox.clear()
    send_invites.run(**invite_task_kwargs(send_task))

    assert [m.to for m in mail.outbox] == [["Bob+news@Outlook.com"]]
    invite = Invite.objects.for_merchant(program.merchant).get()
    assert invite.email_normalized == "bob@outlook.com"


def test_the_sign_in_link_goes_to_the_address_as_given_and_a_tag_is_the_same_person(client, program):
    participant = _join_and_sign_in(client, program, email="kasia+shop@example.pl")

    assert mail.outbox[-1].to == ["kasia+shop@example.pl"]
    assert (participant.email, participant.email_normalized) == ("kasia+shop@example.pl", "kasia@example.pl")


@pytest.mark.parametrize("address", [EXPANDING_DOMAIN, "kasia@[127.0.0.1]", "k" * 300 + "@x.pl"])
def test_joining_with_an_address_no_one_could_have_is_refused_on_the_form(client, program, address):
    response = client.post(
        _base(program) + "join/", {"email": address, "accept_terms": "on"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    assert mail.outbox == []
    assert not Participant.objects.for_merchant(program.merchant).exists()


def _admin_edit(tenant, participant, email: str):
    return tenant.admin.post(
        f"/admin/programs/participant/{participant.pk}/change/",
        {
            "name": participant.name,
            "email": email,
            "external_id": participant.external_id or "",
            "language": participant.language,
            "status": participant.status,
        },
    )


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("anna+admin@outlook.com", b"This email belongs to another participant."),  # Anna's inbox
        (EXPANDING_DOMAIN, b"Enter a valid email address."),
        ("bob@[127.0.0.1]", b"Enter a valid email address."),
    ],
)
def test_the_admin_refuses_another_participants_inbox_or_an_impossible_address(tenant, program, email, error):
    join(program, email="anna@outlook.com", external_id="c-1")
    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")

    response = _admin_edit(tenant, bob, email)

    assert response.status_code == 200  # the form again, with the error
    assert error in response.content
    bob.refresh_from_db()
    assert (bob.email, bob.email_normalized) == ("bob@outlook.com", "bob@outlook.com")


def test_the_admin_keeps_the_address_as_typed_and_stores_its_compared_form(tenant, program):
    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")

    response = _admin_edit(tenant, bob, "Bob+Shop@Outlook.com")

    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.email, bob.email_normalized) == ("Bob+Shop@Outlook.com", "bob@outlook.com")


def test_the_admin_refuses_another_participants_gmail_inbox_spelled_otherwise_on_the_email_field(tenant, program):
    join(program, email="anna.kowalska@gmail.com", external_id="c-1")
    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")

    response = _admin_edit(tenant, bob, "Anna.Kowalska+shop@GMAIL.com")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == ["This email belongs to another participant."]
    bob.refresh_from_db()
    assert (bob.email, bob.email_normalized) == ("bob@outlook.com", "bob@outlook.com")


def test_the_admin_refuses_another_participants_customer_id_on_its_field(tenant, program):
    join(program, email="anna@outlook.com", external_id="c-1")
    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")

    response = tenant.admin.post(
        f"/admin/programs/participant/{bob.pk}/change/",
        {"name": "Bob", "email": bob.email, "external_id": "c-1", "language": bob.language, "status": "active"},
    )

    assert response.status_code == 200  # was an IntegrityError (a 500)
    assert response.context["adminform"].form.errors["external_id"] == [
        "This customer id belongs to another participant."
    ]
    bob.refresh_from_db()
    assert (bob.external_id, bob.name) == ("c-2", "Anna Kowalska")


def test_the_admin_refuses_to_leave_a_participant_with_neither_email_nor_customer_id(tenant, program):
    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")

    response = tenant.admin.post(
        f"/admin/programs/participant/{bob.pk}/change/",
        {"name": "Bob", "email": "", "external_id": "", "language": bob.language, "status": "active"},
    )

    assert response.status_code == 200  # was an IntegrityError on participant_has_identity (a 500)
    assert response.context["adminform"].form.errors["email"] == ["Give an email or a shop customer id."]
    bob.refresh_from_db()
    assert (bob.email, bob.external_id) == ("bob@outlook.com", "c-2")


def test_the_admin_gives_an_erased_participant_no_personal_data_back(tenant, program):
    from programs.services import participant_erase

    bob, _code = join(program, email="bob@outlook.com", external_id="c-2")
    participant_erase(participant=bob)

    response = tenant.admin.post(
        f"/admin/programs/participant/{bob.pk}/change/",
        {"name": "Bob", "email": "bob@outlook.com", "external_id": "", "language": bob.language},
    )

    assert response.status_code == 200
    assert b"it stays erased" in response.content
    bob.refresh_from_db()
    assert (bob.email, bob.name, bob.status) == (None, "", "erased")
