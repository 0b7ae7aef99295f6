"""A real browser (Playwright + Debian's Chromium): join the portal, copy the link, follow it to the shop."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail

from portal.management.commands.screenshots import CHROMIUM_ARGS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def browser(chromium, demo, monkeypatch):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # The demo data exists before Playwright starts (it needs `demo`): ORM calls made inside Playwright's sync
    # context run in another context and would open a connection of their own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
        connections.close_all()


@pytest.fixture
def demo(live_server, settings):
    from django.core.management import call_command

    from programs.models import Program
    from referral_saas.tenancy.models import Merchant

    settings.SITE_URL = live_server.url
    settings.DEMO_SHOP = True
    call_command(
        "createmerchant", "--name", "Demo Shop", "--owner-email", "o@demo.example", "--demo-program",
        "--currency", "PLN", "--language", "pl", stdout=io.StringIO(),
    )  # fmt: skip
    merchant = Merchant.objects.get(slug="demo-shop")
    Program.objects.for_merchant(merchant).update(landing_url=f"{live_server.url}/demo-shop/?campaign=spring")
    return live_server.url


def test_join_copy_the_link_follow_it_and_land_on_the_shop_with_the_referral(browser, demo):
    context = browser.new_context(locale="en-US")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo)
    page = context.new_page()

    page.goto(f"{demo}/p/demo-shop/friends/")  # the browser's language picks English
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("Your email").fill("anna@example.pl")
    page.get_by_label("Your first name").fill("Anna")
    page.get_by_label("I accept the program terms").check()
    page.get_by_role("button", name="Send me my link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    sign_in = re.search(r"(https?://\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(sign_in)
    page.get_by_role("button", name="Open my referral page").click()
    link = page.get_by_test_id("referral-link").input_value()
    assert re.fullmatch(rf"{re.escape(demo)}/r/ANNA-[A-Z2-9]{{4}}", link)

    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied!").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link

    friend = context.new_page()
    friend.goto(copied)
    assert friend.url.startswith(f"{demo}/demo-shop/?campaign=spring&ref=ANNA-")
    assert re.search(r"[?&]rs_click=[0-9a-f]{32}", friend.url)
    code = link.rsplit("/", 1)[1]
    friend.get_by_test_id("attribution").filter(has_text=code).wait_for()  # referral.js kept it

    # The friend comes back later (no parameters in the URL) and buys: the snippet still knows the referral.
    friend.goto(f"{demo}/demo-shop/")
    friend.get_by_test_id("attribution").filter(has_text=code).wait_for()
    friend.get_by_label("Order number").fill("W-1")
    friend.get_by_label("Your email").fill("friend@example.pl")
    friend.get_by_role("button", name="Place order").click()
    assert "attributed to Anna" in friend.get_by_test_id("order-result").inner_text()
    context.close()


def test_the_polish_portal_page_has_no_english_left(browser, demo):
    context = browser.new_context(locale="pl-PL")
    page = context.new_page()
    page.goto(f"{demo}/p/demo-shop/friends/")
    assert page.url == f"{demo}/pl/p/demo-shop/friends/"
    assert page.locator("html").get_attribute("lang") == "pl"
    text = page.locator("body").inner_text()
    for english in (
        "Send me my link",
        "Your email",
        "Get your personal link",
        "Who to invite",
        "Skip to content",
        "Program terms",
        "I accept the program terms",
        "Your friends get",
    ):
        assert english not in text, english
    assert page.get_by_role("button", name=re.compile("link", re.I)).count() >= 1  # "Wyślij mi link"
    assert "Poleć znajomego" in text
    context.close()


def _sign_in(page, demo: str, email: str, name: str) -> None:
    page.goto(f"{demo}/p/demo-shop/friends/")
    page.get_by_label("Your email").fill(email)
    page.get_by_label("Your first name").fill(name)
    page.get_by_label("I accept the program terms").check()
    page.get_by_role("button", name="Send me my link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    page.goto(re.search(r"(https?://\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1))
    page.get_by_role("button", name="Open my referral page").click()
    page.get_by_test_id("referral-link").wait_for()


def test_a_paused_programs_portal_says_so_and_stops_inviting_on_a_phone(browser, demo):
    from programs.models import Program
    from referral_saas.tenancy.models import Merchant

    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()
    _sign_in(page, demo, "anna@example.pl", "Anna")
    assert page.get_by_test_id("program-closed").count() == 0
    # The code stays on one line on a phone (it used to break at its hyphen): one box, not two.
    code_boxes = "document.querySelector('[data-testid=referral-code]').getClientRects().length"
    assert page.evaluate(code_boxes) == 1

    merchant = Merchant.objects.get(slug="demo-shop")
    Program.objects.for_merchant(merchant).update(status=Program.Status.PAUSED)  # the merchant pauses it
    page.reload()

    banner = page.get_by_test_id("program-closed")
    assert "This program is paused" in banner.inner_text()
    assert banner.is_visible()
    assert page.get_by_role("button", name="WhatsApp").count() == 0
    assert page.get_by_label("Your friends' emails").count() == 0
    assert page.get_by_role("heading", name="Your results").is_visible()

    visitor = context.new_page()  # a newcomer: the banner, and no form to join a program that takes nobody
    visitor.goto(f"{demo}/p/demo-shop/friends/")
    assert "This program is paused" in visitor.get_by_test_id("program-closed").inner_text()
    assert visitor.get_by_label("Your email").count() == 0
    context.close()


def test_a_referrer_sees_each_friend_and_a_purchase_under_review_in_polish_on_a_phone(browser, demo):
    from decimal import Decimal

    from referral_saas.tenancy.models import Merchant
    from rewards.services import conversions_process
    from tracking.models import ReferralCode
    from tracking.services import conversion_record

    context = browser.new_context(locale="pl-PL", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{demo}/p/demo-shop/friends/")
    page.locator("#id_email").fill("anna@example.pl")
    page.locator("#id_accept_terms").check()
    page.locator("form[action$='join/'] button[type=submit]").click()
    page.wait_for_url("**/join/")
    page.goto(re.search(r"(https?://\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1))
    page.locator("main form button[type=submit]").click()
    page.get_by_test_id("referral-link").wait_for()

    merchant = Merchant.objects.get(slug="demo-shop")
    code = ReferralCode.objects.for_merchant(merchant).get()
    for order_id, email in (("W-1", "kasia@friends.example"), ("W-2", "held@mailinator.com")):
        conversion, _created = conversion_record(
            merchant=merchant, livemode=True, order_id=order_id, amount=Decimal("120.00"), currency="PLN",
            customer_email=email, customer_external_id=None, code=code.code,
        )  # fmt: skip
        conversions_process(merchant=merchant, conversion_id=conversion.pk)
    page.reload()

    friends = page.get_by_test_id("friend-list")
    friends.scroll_into_view_if_needed()
    assert friends.is_visible()
    assert "Zakup" in page.get_by_test_id("friend-bought").inner_text()
    assert "W trakcie weryfikacji" in page.get_by_test_id("friend-under_review").inner_text()
    assert "h•••@mailinator.com" in page.get_by_test_id("friend-under_review").inner_text()
    assert "weryfikuje" in page.get_by_test_id("rewards-under-review").inner_text()
    assert "gdy znajomi zrobią zakupy" not in page.locator("#rewards").inner_text()  # no "when your friends buy"
    context.close()


def test_the_reward_rule_form_shows_the_fields_of_the_chosen_reward_and_trigger(browser, demo):
    from django.conf import settings
    from django.test import Client

    from referral_saas.tenancy.models import Membership, Merchant
    from referral_saas.tenancy.selectors import SESSION_MERCHANT_KEY

    merchant = Merchant.objects.get(slug="demo-shop")
    owner = Membership.objects.for_merchant(merchant).get(role=Membership.Role.OWNER).user
    client = Client()
    client.force_login(owner)
    session = client.session
    session[SESSION_MERCHANT_KEY] = merchant.pk
    session.save()
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": demo}])
    page = context.new_page()
    page.goto(f"{demo}/admin/rewards/rewardrule/add/")

    def shown(name: str) -> bool:
        return page.locator(f"#id_{name}").is_visible()

    page.select_option("#id_kind", "percent_coupon")
    assert (shown("coupon_prefix"), shown("pool"), shown("milestone")) == (True, False, False)
    page.select_option("#id_kind", "pool_coupon")
    assert (shown("coupon_prefix"), shown("pool")) == (False, True)
    page.select_option("#id_trigger", "milestone")
    assert (shown("milestone"), shown("max_purchases")) == (True, False)
    page.select_option("#id_value_type", "percent_of_order")
    assert shown("max_value") is True
    page.select_option("#id_value_type", "fixed")
    assert shown("max_value") is False
    context.close()


def test_a_referrer_in_variant_b_reads_and_is_paid_bs_offer_and_a_friend_gets_the_welcome_coupon(browser, demo):
    """Issue 18: an A/B arm shows and pays its own offer (generated from its own rule, in Polish), and its friend
    meets the welcome page on a phone, leaves an email and sees the coupon the worker issued appear."""
    from decimal import Decimal

    from fraud.models import FraudAssessment
    from fraud.services import assessment_review
    from portal.services import portal_sso_url
    from programs.models import Program, ProgramVariant
    from referral_saas.tenancy.models import Membership, Merchant
    from rewards.models import Reward, RewardRule
    from rewards.services import conversions_process
    from rewards.services.deciding import referral_process
    from rewards.services.issuing import rewards_release_due
    from tests.factories import join, reward_rule
    from tracking.models import Referral
    from tracking.services import conversion_record

    merchant = Merchant.objects.get(slug="demo-shop")
    program = Program.objects.for_merchant(merchant).get(slug="friends")
    Program.objects.for_merchant(merchant).filter(pk=program.pk).update(friend_welcome_page=True)
    variant = ProgramVariant.objects.for_merchant(merchant).create(program=program, name="B", weight=1)
    reward_rule(program, name="B: 25 PLN credit", variant=variant, kind="store_credit", value_type="fixed",
                value=Decimal("25"), max_value=None, hold_days=0)  # fmt: skip
    _anna, code = join(program, email="anna@example.pl", external_id="c-1", name="Anna Kowalska")
    assert code.variant_id == variant.pk
    context = browser.new_context(locale="pl-PL", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(portal_sso_url(program=program, external_id="c-1", email="anna@example.pl"))
    page.get_by_test_id("referral-link").wait_for()
    page.goto(f"{demo}/pl/p/demo-shop/friends/")
    offer = page.locator(".offer-line").first.inner_text()
    assert "25,00 PLN do wykorzystania w sklepie za pierwszy zakup każdego znajomego" in offer
    assert "10%" not in offer  # the program's referrer rule does not pay variant B

    friends_phone = browser.new_context(locale="pl-PL", viewport={"width": 390, "height": 844})  # not Anna's device
    friend = friends_phone.new_page()
    friend.goto(f"{demo}/r/{code.code}")
    friend.get_by_role("heading", name="Anna K. daje ci prezent").wait_for()
    friend.get_by_label("Twój e-mail").fill("jan@friends.example")
    friend.get_by_role("button", name="Pokaż mój prezent").click()
    friend.get_by_text("Przygotowujemy twój prezent").wait_for()
    referral = Referral.objects.for_merchant(merchant).get(referee_email_normalized="jan@friends.example")
    # The friend is on Anna's network (the test server's one address): the shop's fraud check holds the sign-up.
    assert referral_process(merchant=merchant, referral_id=referral.pk) == "review"  # what the worker does
    friend.get_by_text("Sklep sprawdza tę rejestrację").wait_for(timeout=15_000)  # the page asked, no click
    owner = Membership.objects.for_merchant(merchant).get().user
    assessment = FraudAssessment.objects.for_merchant(merchant).get(referral=referral, conversion__isnull=True)
    assessment_review(assessment=assessment, approve=True, reason="Same household, checked.", user=owner)
    assert referral_process(merchant=merchant, referral_id=referral.pk) == "approved"
    rewards_release_due()
    coupon = Reward.objects.for_merchant(merchant).get(referral=referral, side="referee").coupon_code
    friend.reload()
    friend.get_by_text(coupon).wait_for()
    with friend.expect_navigation():
        friend.get_by_role("link", name="Przejdź do Demo Shop").click()
    assert f"ref={code.code}" in friend.url

    conversion, _created = conversion_record(
        merchant=merchant, livemode=True, order_id="B-1", amount=Decimal("200.00"), currency="PLN",
        customer_email="jan@friends.example", customer_external_id=None, code=code.code,
    )  # fmt: skip
    assert conversions_process(merchant=merchant, conversion_id=conversion.pk) == "review"  # the same network again
    held = FraudAssessment.objects.for_merchant(merchant).get(conversion=conversion)
    assessment_review(assessment=held, approve=True, reason="Same household, checked.", user=owner)
    conversions_process(merchant=merchant, conversion_id=conversion.pk)
    rewards_release_due()
    paid = Reward.objects.for_merchant(merchant).get(conversion=conversion, side="referrer")
    assert (paid.rule.variant_id, paid.value, paid.status) == (variant.pk, Decimal("25.00"), "issued")
    assert not Reward.objects.for_merchant(merchant).filter(conversion=conversion, rule__variant__isnull=True,
                                                            side="referrer").exists()  # fmt: skip
    page.reload()
    assert "25,00" in page.locator("#rewards").inner_text()
    assert RewardRule.objects.for_merchant(merchant).filter(variant=variant).count() == 1
    friends_phone.close()
    context.close()
