"""axe-core (through Playwright and Debian's Chromium) on the main admin and portal pages, at a desktop and a phone
size: no serious or critical violation. A failure lists every rule id with the elements it points at. And
`manage.py screenshots`, which photographs the same pages for review, run against the live server."""

from __future__ import annotations

import datetime
import io
import re
import struct
from decimal import Decimal

import pytest
from django.core import mail

from portal.management.commands.screenshots import CHROMIUM_ARGS
from portal.management.commands.screenshots import SIZES as VIEWPORTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BLOCKING = {"serious", "critical"}
OWNER_EMAIL, OWNER_PASSWORD = "owner@a11y.example", "a11y-password-2026"


@pytest.fixture
def shop(live_server, settings):
    """A merchant with the demo program (rules, texts), a flagged order in the review queue and a few rows."""
    from django.core.management import call_command
    from django.utils import timezone

    from analytics.models import DailyStats
    from fraud.models import FraudAssessment
    from integrations.services import test_order as test_orders
    from programs.models import Program, ProgramVariant
    from referral_saas.tenancy.models import Merchant
    from tests.factories import FACTORY_FOR_MODEL, join
    from tracking.services import conversion_record, referral_record_signup

    settings.SITE_URL = live_server.url
    call_command(
        "createmerchant", "--name", "Access Shop", "--owner-email", OWNER_EMAIL, "--password", OWNER_PASSWORD,
        "--demo-program", "--currency", "PLN", stdout=io.StringIO(),
    )  # fmt: skip
    merchant = Merchant.objects.get(slug="access-shop")
    Program.objects.for_merchant(merchant).filter(slug="friends").update(
        leaderboard_enabled=True, friend_welcome_page=True
    )
    program = Program.objects.for_merchant(merchant).get(slug="friends")
    _participant, code = join(program, email="ewa@example.pl", name="Ewa")
    # Ewa has a friend who signed up and one who bought: her portal lists them.
    referral_record_signup(
        merchant=merchant, livemode=True, customer_external_id=None, customer_email="jan@example.pl", code=code.code
    )
    conversion_record(
        merchant=merchant, livemode=True, order_id="A-1", amount=Decimal("120.00"), currency="PLN",
        customer_email="ola@example.pl", code=code.code,
    )  # fmt: skip
    # An A/B test and two weeks of numbers: the program page shows variant rows, the dashboard its tables and charts.
    variants = [
        ProgramVariant.objects.for_merchant(merchant).create(merchant=merchant, program=program, name=name)
        for name in ("A", "B")
    ]
    today = timezone.localdate()
    for days_ago in range(14):
        for n, variant in enumerate(variants):
            DailyStats.objects.for_merchant(merchant).create(
                merchant=merchant, program=program, variant=variant, day=today - datetime.timedelta(days=days_ago),
                clicks=20 + days_ago + n, unique_visitors=15 + n, participants_joined=3, signups=4 + n,
                attributed_orders=2 + n, shares=5, shares_by_channel={"email": 2, "whatsapp": 3},
            )  # fmt: skip
    FACTORY_FOR_MODEL[FraudAssessment](merchant)
    test_order = test_orders.test_order_send(merchant=merchant, program=program)  # the install page shows its run
    return {"url": live_server.url, "merchant": merchant, "program": program, "test_order": test_order.order_id,
            "code": code.code}  # fmt: skip


def _admin_pages(program) -> dict[str, str]:
    return {
        "admin home": "/admin/",
        "program list": "/admin/programs/program/",
        "program page": f"/admin/programs/program/{program.pk}/change/",
        "program dashboard": f"/admin/analytics/dailystats/program/{program.pk}/",
        "reward rules": "/admin/rewards/rewardrule/",
        "add a reward rule": "/admin/rewards/rewardrule/add/",
        "review queue": "/admin/fraud/fraudassessment/",
        "install page": f"/admin/integrations/connection/install/{program.pk}/",
        "participants": "/admin/programs/participant/",
    }


def _blocking(page, name: str) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("load")
    found = []
    for violation in Axe().run(page).response["violations"]:
        if violation["impact"] in BLOCKING:
            targets = ", ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:8])
            found.append(f"{name} ({page.url}): {violation['id']} [{violation['impact']}] on {targets}")
    return found


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_the_main_admin_and_portal_pages_have_no_serious_axe_violation(chromium, shop, size, monkeypatch):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from rewards.models import RewardRule

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base, program = shop["url"], shop["program"]
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            # The merchant's admin, signed in as the owner.
            staff = browser.new_context(locale="en-US", viewport=VIEWPORTS[size])
            page = staff.new_page()
            assert page.goto(f"{base}/accounts/signup/").status == 200
            problems += _blocking(page, "merchant sign-up")
            page.goto(f"{base}/accounts/login/")
            problems += _blocking(page, "sign-in")
            page.locator("input[name=login]").fill(OWNER_EMAIL)
            page.locator("input[name=password]").fill(OWNER_PASSWORD)
            page.locator("form button[type=submit]").last.click()
            page.wait_for_url(re.compile(r".*/admin/.*"))
            rule = RewardRule.objects.for_merchant(shop["merchant"]).filter(program=program).first()
            pages = {
                **_admin_pages(program),
                "a reward rule": f"/admin/rewards/rewardrule/{rule.pk}/change/",
                "install page with a test order's run": f"/admin/integrations/connection/install/{program.pk}/"
                f"?test_order={shop['test_order']}",
            }
            for name, path in pages.items():
                response = page.goto(f"{base}{path}")
                assert response.status == 200, (name, path, response.status)
                problems += _blocking(page, name)
            staff.close()

            # The portal: the landing/join page, then the referrer's own page once signed in.
            customer = browser.new_context(locale="en-US", viewport=VIEWPORTS[size])
            page = customer.new_page()
            page.goto(f"{base}/p/access-shop/friends/")
            problems += _blocking(page, "portal join")
            page.get_by_label("Your email").fill("ewa@example.pl")
            page.get_by_label("Your first name").fill("Ewa")
            page.get_by_label("I accept the program terms").check()
            page.get_by_role("button", name="Send me my link").click()
            page.get_by_role("heading", name="Check your inbox").wait_for()
            page.goto(re.search(r"(https?://\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1))
            problems += _blocking(page, "portal sign-in")
            page.get_by_role("button", name="Open my referral page").click()
            page.get_by_test_id("referral-link").wait_for()
            problems += _blocking(page, "portal dashboard")
            assert page.goto(f"{base}/p/access-shop/friends/leaderboard/").status == 200
            problems += _blocking(page, "portal leaderboard")
            customer.close()

            # One page in Polish.
            polish = browser.new_context(locale="pl-PL", viewport=VIEWPORTS[size])
            page = polish.new_page()
            page.goto(f"{base}/p/access-shop/friends/")
            assert page.locator("html").get_attribute("lang") == "pl"
            problems += _blocking(page, "portal join (pl)")
            # The friend's welcome page (Ewa's code), before and after leaving an email.
            page.goto(f"{base}/p/access-shop/friends/welcome/?ref={shop['code']}")
            problems += _blocking(page, "welcome page (pl)")
            page.locator("section.join input[type=email]").fill("friend@example.pl")
            page.locator("section.join button[type=submit]").click()
            page.locator(".gift-state").wait_for()
            problems += _blocking(page, "welcome page, gift waiting (pl)")
            polish.close()
        finally:
            browser.close()
            connections.close_all()
    assert not problems, "serious or critical axe violations:\n" + "\n".join(problems)


def test_the_screenshots_command_saves_a_png_of_every_main_page_at_both_sizes(chromium, shop, tmp_path):
    from django.core.management import CommandError, call_command

    stdout = io.StringIO()
    call_command(
        "screenshots", "--out", str(tmp_path), "--base-url", shop["url"], "--email", OWNER_EMAIL,
        "--password", OWNER_PASSWORD, "--chromium", chromium, stdout=stdout,
    )  # fmt: skip
    expected = {
        "admin-home", "admin-programs", "admin-program", "admin-program-dashboard", "admin-reward-rules",
        "admin-reward-rule-add", "admin-review-queue", "admin-install", "portal-join-en", "portal-join-pl",
        "portal-welcome", "portal-dashboard",
    }  # fmt: skip
    for size, viewport in VIEWPORTS.items():
        files = {file.stem: file for file in (tmp_path / size).iterdir()}
        assert set(files) == expected, size
        for name, file in files.items():
            head = file.read_bytes()[:24]
            assert head[:8] == b"\x89PNG\r\n\x1a\n", (size, name)
            width, height = struct.unpack(">II", head[16:24])  # the IHDR chunk
            assert width >= viewport["width"], (size, name, width)
            assert height >= viewport["height"], (size, name, height)
            assert str(file) in stdout.getvalue()

    # A wrong login is said, not photographed.
    with pytest.raises(CommandError, match="Could not sign in"):
        call_command(
            "screenshots", "--out", str(tmp_path / "again"), "--base-url", shop["url"], "--email", OWNER_EMAIL,
            "--password", "not-the-password", "--chromium", chromium, stdout=io.StringIO(),
        )  # fmt: skip
