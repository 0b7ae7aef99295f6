"""One answer to "what does this code give a friend": the shop API's code check and the referrer's portal page (its
offer lines, share texts and invitations) show the same offer, the A/B variant's where it has one."""

from __future__ import annotations

import html
from unittest import mock
from urllib.parse import unquote

import pytest
from django.core import mail
from django.test import Client

from portal.services import portal_sso_url
from portal.tasks import send_invites
from programs.models import ProgramText, ProgramVariant
from referral_saas.celery import app as celery_app
from tests.factories import join
from tests.portal.helpers import invite_task_kwargs

pytestmark = pytest.mark.django_db

VARIANT_FRIEND = "15 zł off your first order (variant B)"
VARIANT_OWN = "25 zł for each friend (variant B)"
PROGRAM_FRIEND = "10% off your first order"  # ProgramFactory's


def _variant(program, **offers) -> ProgramVariant:
    """The program's only A/B arm, so every participant who joins now lands in it."""
    return ProgramVariant.objects.for_merchant(program.merchant).create(program=program, name="B", weight=1, **offers)


def _signed_in(program, participant) -> Client:
    client = Client()
    url = portal_sso_url(program=program, external_id=participant.external_id, email=participant.email)
    assert client.get("/" + url.split("/", 3)[3]).status_code == 302
    return client


def _dashboard(client: Client, program, lang: str = "en") -> str:
    response = client.get(f"/{lang}/p/{program.merchant.slug}/{program.slug}/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_api_and_the_referrers_portal_page_show_the_variants_friend_offer(tenant, program):
    _variant(program, referee_offer=VARIANT_FRIEND, referrer_offer=VARIANT_OWN)
    anna, code = join(program, email="anna@example.pl", external_id="c-1")
    assert code.variant.name == "B"

    api = tenant.api.get(f"/api/v1/codes/{code.code}").json()
    page = _dashboard(_signed_in(program, anna), program)

    assert api["referee_offer"] == VARIANT_FRIEND
    assert f"Your friends get: {VARIANT_FRIEND}" in " ".join(page.replace("</strong>", "").split())
    assert f"You get: {VARIANT_OWN}" in " ".join(page.replace("</strong>", "").split())
    assert PROGRAM_FRIEND not in page


def test_a_share_and_an_invitation_carry_the_variants_friend_offer(tenant, program, django_capture_on_commit_callbacks):
    _variant(program, referee_offer=VARIANT_FRIEND)
    anna, _code = join(program, email="anna@example.pl", external_id="c-1")
    client = _signed_in(program, anna)
    base = f"/en/p/{program.merchant.slug}/{program.slug}/"

    shared = client.post(base + "share/whatsapp/")
    with mock.patch.object(celery_app, "send_task") as send_task, django_capture_on_commit_callbacks(execute=True):
        assert client.post(base + "invite/", {"emails": "friend@x.example"}).status_code == 302
    send_invites.run(**invite_task_kwargs(send_task))

    assert shared.status_code == 303
    assert unquote(shared["Location"]).startswith(f"https://wa.me/?text={VARIANT_FRIEND} ")
    assert f"Your welcome gift: {VARIANT_FRIEND}" in mail.outbox[-1].body


def test_without_a_variant_offer_both_show_the_programs_offer_in_the_asked_language(tenant, program):
    _variant(program)  # an arm that tests something else: the program's offer stands
    ProgramText.objects.for_merchant(tenant.merchant).create(
        program=program, language="pl", referee_offer="10% zniżki na pierwsze zamówienie"
    )
    anna, code = join(program, email="anna@example.pl", external_id="c-1")
    client = _signed_in(program, anna)

    polish = tenant.api.get(f"/api/v1/codes/{code.code}?language=pl").json()["referee_offer"]
    default = tenant.api.get(f"/api/v1/codes/{code.code}").json()["referee_offer"]
    english = tenant.api.get(f"/api/v1/codes/{code.code}?language=en").json()["referee_offer"]

    assert polish == "10% zniżki na pierwsze zamówienie"
    assert polish in _dashboard(client, program, "pl")
    assert default == polish  # the program's language (pl): what its merchant wrote in it
    assert english == PROGRAM_FRIEND  # no English texts and no rules to generate them from: the program's own
    assert PROGRAM_FRIEND in _dashboard(client, program, "en")


def test_the_variants_offer_is_shown_whatever_the_language(tenant, program):
    _variant(program, referee_offer=VARIANT_FRIEND)
    ProgramText.objects.for_merchant(tenant.merchant).create(program=program, language="pl", referee_offer="10% zniżki")
    anna, code = join(program, email="anna@example.pl", external_id="c-1")

    assert tenant.api.get(f"/api/v1/codes/{code.code}?language=pl").json()["referee_offer"] == VARIANT_FRIEND
    assert VARIANT_FRIEND in _dashboard(_signed_in(program, anna), program, "pl")


@pytest.mark.parametrize("language", ["xx", "", "pl-PL\x00"])
def test_a_language_we_do_not_have_gives_the_programs_own_offer_never_an_error(tenant, referrer, language):
    _anna, code = referrer
    response = tenant.api.get(f"/api/v1/codes/{code.code}", {"language": language})
    assert response.status_code == 200  # a checkout must not fail on it
    assert response.json()["referee_offer"] == PROGRAM_FRIEND


def test_the_code_check_shows_the_friends_reward_as_the_rules_pay_it_the_variants_where_it_has_its_own(tenant, program):
    from decimal import Decimal

    from rewards.models import Kind, RewardRule, Side
    from tests.rewards.helpers import rule

    _anna, program_code = join(program, email="anna@example.pl", external_id="c-1")  # before the A/B test: no arm
    variant_b = _variant(program, referee_offer=VARIANT_FRIEND)
    _bob, b_code = join(program, email="bob@example.pl", external_id="c-2")  # lands in B, the only arm
    fixed = RewardRule.ValueType.FIXED
    rule(program, name="referrer 10%")  # the referrer's: not shown to the friend
    rule(program, name="friend 10% off", side=Side.REFEREE, kind=Kind.PERCENT_COUPON, value_type=fixed,
         value=Decimal("10"), hold_days=0)  # fmt: skip
    rule(program, name="friend 15 zl off (B)", side=Side.REFEREE, kind=Kind.AMOUNT_COUPON, variant=variant_b,
         value_type=fixed, value=Decimal("15"), hold_days=0, min_order_value=Decimal("60"))  # fmt: skip

    answer = tenant.api.get(f"/api/v1/codes/{b_code.code}").json()
    assert answer["referee_offer"] == VARIANT_FRIEND
    assert answer["referee_rewards"] == [
        {
            "when": "first_purchase",
            "kind": "amount_coupon",
            "value_type": "fixed",
            "value": "15.00",
            "currency": program.currency,
            "max_value": None,
            "min_order_value": "60.00",
            "hold_days": 0,
            "description": "",
        }
    ]  # B's own friend rule, instead of the program's 10% (what B's friends are paid)
    answer = tenant.api.get(f"/api/v1/codes/{program_code.code}").json()
    assert [(r["kind"], r["value"], r["currency"]) for r in answer["referee_rewards"]] == [
        ("percent_coupon", "10.00", None)
    ]
