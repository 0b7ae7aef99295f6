"""The friend's welcome page (issue 18): a link of a program that welcomes friends opens "Anna K. gave you a gift",
the friend leaves their email, a worker pays their sign-up rule and the page reveals the coupon, then sends them on
to the shop with the referral. Nothing to give, or a stranger's code: straight to the shop."""

from __future__ import annotations

import html
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from portal.services import WELCOME_LIMIT_PER_IP
from rewards.models import Reward, RewardRule
from rewards.services.deciding import referral_process
from rewards.services.issuing import rewards_release_due
from tests.factories import ProgramFactory, join, reward_rule
from tracking.models import Referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def welcoming(tenant):
    program = ProgramFactory(
        merchant=tenant.merchant, slug="welcome", name="Welcome", default_language="en", currency="EUR",
        referrer_offer="", referee_offer="", friend_welcome_page=True, landing_url="https://shop.example/start?x=1",
    )  # fmt: skip
    reward_rule(program, name="Friend coupon", side="referee", trigger=RewardRule.Trigger.SIGNUP,
                kind="percent_coupon", value_type="fixed", value=Decimal("15"), max_value=None, hold_days=0,
                coupon_prefix="HELLO")  # fmt: skip
    return program


def _text(response) -> str:
    return " ".join(html.unescape(response.content.decode()).replace("</strong>", "").split())


def _welcome_url(program, code: str, click: str = "") -> str:
    query = f"?ref={code}" + (f"&rs_click={click}" if click else "")
    return f"/en/p/{program.merchant.slug}/{program.slug}/welcome/{query}"


def test_a_link_of_a_welcoming_program_opens_the_welcome_page_with_the_click(tenant, welcoming, click_stream):
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1", name="Anna Kowalska")
    response = Client().get(f"/r/{code.code}?utm_source=ig", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == f"/p/{tenant.merchant.slug}/welcome/welcome/"
    query = parse_qs(target.query)
    assert query["ref"] == [code.code]
    assert query["utm_source"] == ["ig"]
    assert query["rs_click"]

    page = Client().get(_welcome_url(welcoming, code.code, query["rs_click"][0]))
    assert page.status_code == 200
    text = _text(page)
    assert "Anna K. gave you a gift" in text
    assert "Your gift: a 15% off coupon on signing up" in text
    # "Continue" keeps the referral for the shop's snippet, on the merchant's own landing page.
    landing = urlsplit(html.unescape(page.content.decode()).split('class="button" href="')[1].split('"')[0])
    assert (landing.netloc, landing.path) == ("shop.example", "/start")
    assert parse_qs(landing.query) == {"x": ["1"], "ref": [code.code], "rs_click": query["rs_click"]}


def test_the_friend_leaves_an_email_and_the_page_reveals_the_coupon_a_worker_issued(tenant, welcoming):
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    friend = Client()
    url = _welcome_url(welcoming, code.code)
    posted = friend.post(url, {"email": "Jan@Example.com", "ref": code.code})
    assert posted.status_code == 302
    assert posted["Location"] == url
    referral = Referral.objects.for_merchant(tenant.merchant).get(program=welcoming)
    assert referral.referee_email_normalized == "jan@example.com"

    waiting = friend.get(f"/en/p/{tenant.merchant.slug}/welcome/welcome/gift.json")
    assert waiting.json()["state"] == "waiting"
    assert "Preparing your gift" in _text(friend.get(url))

    assert referral_process(merchant=tenant.merchant, referral_id=referral.pk) == "approved"
    rewards_release_due()  # hold 0: released and issued by the worker's next step
    reward = Reward.objects.for_merchant(tenant.merchant).get(referral=referral, side="referee")
    assert reward.status == Reward.Status.ISSUED
    ready = friend.get(f"/en/p/{tenant.merchant.slug}/welcome/welcome/gift.json").json()
    assert ready["state"] == "ready"
    assert ready["coupon_code"] == reward.coupon_code
    assert reward.coupon_code.startswith("HELLO")
    page = _text(friend.get(url))
    assert f'Your code: <strong class="code nowrap">{reward.coupon_code}' in page

    again = friend.post(url, {"email": "jan@example.com", "ref": code.code})
    assert again.status_code == 302
    assert Referral.objects.for_merchant(tenant.merchant).filter(program=welcoming).count() == 1  # the same friend


def test_a_referrer_welcoming_themselves_gets_no_gift(tenant, welcoming):
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    friend = Client()
    url = _welcome_url(welcoming, code.code)
    assert friend.post(url, {"email": "anna@example.com", "ref": code.code}).status_code == 302
    assert friend.get(f"/en/p/{tenant.merchant.slug}/welcome/welcome/gift.json").json()["state"] == "none"
    assert "does not earn a welcome gift" in _text(friend.get(url))


@pytest.mark.parametrize("email", ["", "not-an-email", "a@localhost", "x" * 300 + "@example.com"])
def test_a_bad_email_is_refused_on_the_page_and_nothing_is_written(tenant, welcoming, email):
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    response = Client().post(_welcome_url(welcoming, code.code), {"email": email, "ref": code.code})
    assert response.status_code == 400
    assert ("This field is required" if not email else "Enter a valid email address") in _text(response)
    assert not Referral.objects.for_merchant(tenant.merchant).exists()


def test_sign_ups_from_one_network_are_limited(tenant, welcoming):
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    url = _welcome_url(welcoming, code.code)
    for i in range(WELCOME_LIMIT_PER_IP):
        assert Client().post(url, {"email": f"f{i}@example.com", "ref": code.code}).status_code == 302
    refused = Client().post(url, {"email": "one-more@example.com", "ref": code.code})
    assert refused.status_code == 422
    assert "Too many sign-ups from this network" in _text(refused)
    assert Referral.objects.for_merchant(tenant.merchant).count() == WELCOME_LIMIT_PER_IP


def test_an_unknown_or_another_merchants_code_goes_straight_to_the_shop(tenant, other_tenant, welcoming):
    theirs = ProgramFactory(merchant=other_tenant.merchant, slug="welcome", friend_welcome_page=True)
    _ben, their_code = join(theirs, email="ben@example.com", external_id="c-9")
    for code in ("NOPE-1234", their_code.code):
        response = Client().get(_welcome_url(welcoming, code))
        assert response.status_code == 302
        assert response["Location"] == "https://shop.example/start?x=1"  # no referral carried
        refused = Client().post(_welcome_url(welcoming, code), {"email": "jan@example.com", "ref": code})
        assert refused.status_code == 302
    assert not Referral.objects.for_merchant(tenant.merchant).exists()
    assert not Referral.objects.for_merchant(other_tenant.merchant).exists()


def test_a_first_order_discount_is_given_at_the_click_as_the_code_to_type_at_checkout(tenant, welcoming):
    RewardRule.objects.for_merchant(tenant.merchant).filter(program=welcoming).update(trigger="first_purchase")
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    page = _text(Client().get(_welcome_url(welcoming, code.code)))
    assert "a 15% off coupon after the first purchase" in page
    assert 'name="email"' not in page  # nothing to sign up for
    assert f'value="{code.code}" readonly data-testid="checkout-code"' in page
    assert "Enter this code at checkout:" in page
    assert "Continue to" in page
    assert not Referral.objects.for_merchant(tenant.merchant).exists()


def test_a_held_or_non_coupon_friend_reward_shows_only_the_offer_and_the_way_on(tenant, welcoming):
    RewardRule.objects.for_merchant(tenant.merchant).filter(program=welcoming).update(
        trigger="first_purchase", hold_days=14
    )
    _anna, code = join(welcoming, email="anna@example.com", external_id="c-1")
    page = _text(Client().get(_welcome_url(welcoming, code.code)))
    assert "Enter this code at checkout" not in page
    assert 'name="email"' not in page
    assert "Continue to" in page


def test_the_gift_status_of_a_browser_that_did_not_sign_up_is_not_found(tenant, welcoming):
    response = Client().get(f"/en/p/{tenant.merchant.slug}/welcome/welcome/gift.json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_program_without_the_welcome_page_sends_links_to_its_landing_page(tenant, program, click_stream):
    _anna, code = join(program, email="anna@example.com", external_id="c-1")
    response = Client().get(f"/r/{code.code}", HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1")
    assert response["Location"].startswith(program.landing_url.split("?")[0])
    # Its welcome page's address, typed by hand, offers nothing either: the merchant did not ask for it.
    typed = Client().post(_welcome_url(program, code.code), {"email": "jan@example.com", "ref": code.code})
    assert typed.status_code == 302
    assert typed["Location"].startswith(program.landing_url.split("?")[0])
    assert not Referral.objects.for_merchant(tenant.merchant).exists()
