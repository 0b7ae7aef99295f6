"""The offer people read is generated from the rules that pay it (issue 18, item 1): the portal, the code check, the
share texts and the invitation say, in the reader's language, what the rules will pay; the merchant's own wording
replaces it in the language it is written in and is checked against the rules."""

from __future__ import annotations

import html
from decimal import Decimal
from unittest import mock
from urllib.parse import unquote

import pytest
from django.core import mail
from django.test import Client
from django.utils import translation

from portal.services import portal_sso_url
from portal.tasks import send_invites
from programs.models import ProgramText, ProgramVariant
from programs.signals import program_setup_warnings
from referral_saas.celery import app as celery_app
from rewards.models import RewardRule
from rewards.offers import offers_for, rule_offer
from tests.factories import ProgramFactory, join, reward_rule
from tests.portal.helpers import invite_task_kwargs

pytestmark = pytest.mark.django_db

REFERRER_EN = (
    "10.00 EUR in store credit for each friend's first purchase (orders of at least 50.00 EUR, paid 14 days later)"
)
FRIEND_EN = "a 15% off coupon on signing up"


@pytest.fixture
def plain(tenant):
    """A program in English with no wording of its own and a double-sided pair of rules."""
    program = ProgramFactory(
        merchant=tenant.merchant, slug="plain", name="Plain", default_language="en", currency="EUR",
        referrer_offer="", referee_offer="",
    )  # fmt: skip
    reward_rule(program, name="Referrer credit", kind="store_credit", value_type="fixed", value=Decimal("10"),
                max_value=None, min_order_value=Decimal("50"), hold_days=14)  # fmt: skip
    reward_rule(program, name="Friend coupon", side="referee", trigger=RewardRule.Trigger.SIGNUP,
                kind="percent_coupon", value_type="fixed", value=Decimal("15"), max_value=None,
                hold_days=0)  # fmt: skip
    return program


def _page(client: Client, program, lang: str) -> str:
    response = client.get(f"/{lang}/p/{program.merchant.slug}/{program.slug}/")
    assert response.status_code == 200
    return " ".join(html.unescape(response.content.decode()).replace("</strong>", "").split())


def _signed_in(program, participant) -> Client:
    client = Client()
    url = portal_sso_url(program=program, external_id=participant.external_id, email=participant.email)
    assert client.get("/" + url.split("/", 3)[3]).status_code == 302
    return client


def test_with_no_wording_the_portal_and_the_code_check_say_what_the_rules_pay(tenant, plain):
    anna, code = join(plain, email="anna@example.com", external_id="c-1")

    assert tenant.api.get(f"/api/v1/codes/{code.code}").json()["referee_offer"] == FRIEND_EN
    landing = _page(Client(), plain, "en")
    assert f"You get: {REFERRER_EN}" in landing
    assert f"Your friends get: {FRIEND_EN}" in landing
    dashboard = _page(_signed_in(plain, anna), plain, "en")
    assert f"You get: {REFERRER_EN}" in dashboard


@pytest.mark.parametrize(
    ("lang", "friend"),
    [("pl", "kupon na 15% rabatu przy rejestracji"), ("ro", "un cupon cu reducere de 15% la înscriere"),
     ("ru", "купон на скидку 15% при регистрации")],
)  # fmt: skip
def test_the_generated_offer_is_in_the_readers_language(tenant, plain, lang, friend):
    _anna, code = join(plain, email="anna@example.com", external_id="c-1")
    assert tenant.api.get(f"/api/v1/codes/{code.code}?language={lang}").json()["referee_offer"] == friend
    assert friend in _page(Client(), plain, lang)


def test_the_merchants_wording_replaces_the_generated_text_in_its_own_language_only(tenant, plain):
    plain.referee_offer = "15% off for friends of our friends"
    plain.save()
    ProgramText.objects.for_merchant(tenant.merchant).create(
        program=plain, language="ro", referee_offer="15% pentru tine"
    )
    _anna, code = join(plain, email="anna@example.com", external_id="c-1")

    assert (
        offers_for(program=plain, variant=None, language="en")["referee_offer"] == "15% off for friends of our friends"
    )
    assert offers_for(program=plain, variant=None, language="ro")["referee_offer"] == "15% pentru tine"
    polish = tenant.api.get(f"/api/v1/codes/{code.code}?language=pl").json()["referee_offer"]
    assert polish == "kupon na 15% rabatu przy rejestracji"  # generated: the English wording is not Polish


def test_an_ab_variant_with_its_own_rule_shows_and_generates_its_own_offer(tenant, plain):
    variant = ProgramVariant.objects.for_merchant(tenant.merchant).create(program=plain, name="B", weight=1)
    reward_rule(plain, name="B credit", variant=variant, kind="store_credit", value_type="fixed", value=Decimal("15"),
                max_value=None, hold_days=0)  # fmt: skip
    anna, code = join(plain, email="anna@example.com", external_id="c-1")
    assert code.variant_id == variant.pk

    dashboard = _page(_signed_in(plain, anna), plain, "en")
    assert "You get: 15.00 EUR in store credit for each friend's first purchase" in dashboard
    assert "10.00 EUR" not in dashboard  # the program's rule does not pay variant B's referrers
    with translation.override("pl"):
        polish = offers_for(program=plain, variant=variant, language="pl")["referrer_offer"]
    assert polish.startswith("15,00 EUR")


def test_the_share_text_and_the_invitation_carry_the_generated_friend_offer(
    tenant, plain, django_capture_on_commit_callbacks
):
    anna, _code = join(plain, email="anna@example.com", external_id="c-1")
    client = _signed_in(plain, anna)
    shared = client.post(f"/en/p/{tenant.merchant.slug}/plain/share/whatsapp/")
    assert shared.status_code == 303
    assert unquote(shared["Location"]).startswith(f"https://wa.me/?text={FRIEND_EN} ")

    base = f"/pl/p/{tenant.merchant.slug}/plain/"
    with mock.patch.object(celery_app, "send_task") as send_task, django_capture_on_commit_callbacks(execute=True):
        assert client.post(base + "invite/", {"emails": "jan@example.com"}).status_code == 302
    send_invites.run(**invite_task_kwargs(send_task))
    assert "kupon na 15% rabatu przy rejestracji" in mail.outbox[-1].body


def test_each_trigger_and_limit_reads_as_a_customer_would_say_it(plain):
    rule = reward_rule(plain, name="Each", side="referrer", trigger=RewardRule.Trigger.EACH_PURCHASE,
                       max_purchases=3, kind="points", value_type="fixed", value=Decimal("100"), max_value=None,
                       hold_days=1, cap_total=5)  # fmt: skip
    milestone = reward_rule(plain, name="Five", trigger=RewardRule.Trigger.MILESTONE, milestone=5, kind="cash",
                            value_type="fixed", value=Decimal("50"), max_value=None, hold_days=0)  # fmt: skip
    share = reward_rule(plain, name="Share", kind="store_credit", value=Decimal("5"), max_value=Decimal("20"),
                        hold_days=0)  # fmt: skip
    with translation.override("en"):
        assert rule_offer(rule, "EUR") == (
            "100 points for each of a friend's first 3 purchases (paid 1 day later, up to 5 rewards)"
        )
        assert rule_offer(milestone, "EUR") == "50.00 EUR in cash once 5 friends have bought"
        assert rule_offer(share, "EUR") == (
            "5% of the order in store credit (at most 20.00 EUR) for each friend's first purchase"
        )


def test_wording_that_disagrees_with_the_rules_is_flagged_and_wording_without_numbers_is_not(tenant, plain):
    plain.referrer_offer = "A 20 EUR voucher for every friend"
    plain.referee_offer = "A surprise gift"
    plain.save()
    variant = ProgramVariant.objects.for_merchant(tenant.merchant).create(
        program=plain, name="B", weight=1, referrer_offer="10 EUR credit"
    )
    with translation.override("en"):
        warnings = program_setup_warnings(plain)
    mismatches = [w for w in warnings if "promises" in w]
    assert len(mismatches) == 1, warnings
    assert "A 20 EUR voucher" in mismatches[0]
    assert REFERRER_EN in mismatches[0]
    assert variant.referrer_offer not in " ".join(mismatches)  # 10 is what the rule pays

    RewardRule.objects.for_merchant(tenant.merchant).filter(side="referee").update(active=False)
    with translation.override("en"):
        warnings = program_setup_warnings(plain)
    assert any("“A surprise gift”, but no active reward rule pays the friend" in w for w in warnings)


def test_the_program_page_holds_numbers_rules_offers_install_and_preview(tenant, plain):
    response = tenant.admin.get(f"/admin/programs/program/{plain.pk}/change/")
    assert response.status_code == 200
    page = " ".join(html.unescape(response.content.decode()).split())
    for title in ("The last 30 days", "Reward rules: what pays", "The offer as customers read it",
                  "Install:", "Preview the portal"):  # fmt: skip
        assert title in page
    assert "Referrer credit" in page
    assert REFERRER_EN in page
    assert "kupon na 15% rabatu przy rejestracji" in page  # the Polish row of the generated offer
    assert f"/install/{plain.pk}/" in page
    assert f"/ru/p/{tenant.merchant.slug}/plain/" in page


def test_another_merchants_program_page_is_not_found(other_tenant, plain):
    assert other_tenant.admin.get(f"/admin/programs/program/{plain.pk}/change/").status_code == 404


def test_the_admin_home_leads_to_each_programs_page(tenant, plain):
    home = tenant.admin.get("/admin/")
    assert home.status_code == 200
    assert f'href="/admin/programs/program/{plain.pk}/change/">rules, offer, install</a>' in home.content.decode()
