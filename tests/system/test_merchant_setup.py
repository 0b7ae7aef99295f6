"""A merchant setting up, through gunicorn, a worker and beat, over HTTP: the install page of their program, the
"Send a test order" loop in test mode (by a signed-in browser session, then by a real Chromium clicking the button),
a code check at checkout, and the admin's guardrail for an active program that pays nobody."""

from __future__ import annotations

import html
import re

import pytest

from tests.system.stack import Browser, wait_for

# One configuration: the install page and the loop do not depend on how the processes are started (test_loop.py
# runs the loop under every configuration).
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("stack", ["procfile"], indirect=True)]


@pytest.fixture
def shop(stack):
    return stack.createmerchant()


@pytest.fixture
def owner(stack, shop) -> Browser:
    browser = Browser(stack.base_url)
    browser.sign_in(shop.owner_email, shop.password)
    return browser


def _install_path(owner: Browser) -> str:
    listing = owner.get("/admin/programs/program/")
    assert listing.status_code == 200
    return re.search(r"/admin/integrations/connection/install/\d+/", listing.text).group(0)


def _send_test_order(owner: Browser, install: str) -> str:
    """Press "Send a test order" as the page's form does; the order id of the run it shows."""
    token = owner.form(install).fields["csrfmiddlewaretoken"]
    sent = owner.post(f"{install}test-order/", data={"csrfmiddlewaretoken": token}, allow_redirects=False)
    assert sent.status_code == 302, sent.text[-2000:]
    return re.search(r"\?test_order=([\w-]+)#test-order$", sent.headers["Location"]).group(1)


def _stages(owner: Browser, install: str, order_id: str) -> dict[str, str]:
    run = owner.get(f"{install}test-order/{order_id}/")
    assert run.status_code == 200, run.text[-2000:]
    return {stage["key"]: stage["state"] for stage in run.json()["stages"]}


def test_the_install_page_renders_for_the_owner_with_the_samples_of_their_program(stack, shop, owner):
    install = _install_path(owner)
    page = owner.get(install)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f'"program": "{shop.program}"' in text  # the join sample names this program
    assert f"{stack.base_url}/api/v1/conversions" in text
    assert f'<script src="{stack.base_url}/static/referral.js"' in text
    assert "Send a test order" in text
    assert shop.live_key not in text  # keys by name only
    assert shop.test_key not in text
    assert Browser(stack.base_url).get(install, allow_redirects=False).status_code == 302  # signed out: to sign in


def test_a_test_order_from_the_install_page_runs_to_an_issued_reward_and_a_test_mode_webhook(
    stack, shop, owner, webhook_receiver
):
    tester = stack.api(shop.test_key)
    endpoint = tester.post("/api/v1/webhook-endpoints", json={"url": webhook_receiver.url})
    assert endpoint.status_code == 201, endpoint.text
    assert endpoint.json()["livemode"] is False
    install = _install_path(owner)

    order_id = _send_test_order(owner, install)
    page = html.unescape(owner.get(f"{install}?test_order={order_id}").text)
    assert f"Test order {order_id}" in page
    wait_for(
        lambda: _stages(owner, install, order_id) == {
            "joined": "done", "clicked": "done", "attributed": "done", "fraud": "done", "reward": "done",
            "webhooks": "done",
        },
        timeout=120,
        what="the test order's reward to be issued and its webhooks delivered",
    )  # fmt: skip

    # The shop's test-mode endpoint heard of it; the live API never sees it.
    events = [e for e in webhook_receiver.events() if e.get("data", {}).get("order_id") == order_id]
    assert {"conversion.attributed", "reward.issued"} <= {e["type"] for e in events}
    orders = tester.get("/api/v1/conversions").json()["results"]
    assert [o["order_id"] for o in orders] == [order_id]
    assert orders[0]["attributed"] is True
    assert stack.api(shop.live_key).get("/api/v1/conversions").json()["results"] == []


def test_a_browser_clicks_send_a_test_order_and_sees_the_stages_tick(stack, shop, owner, chromium):
    from playwright.sync_api import expect, sync_playwright

    from portal.management.commands.screenshots import CHROMIUM_ARGS

    install = _install_path(owner)
    cookies = [{"name": c.name, "value": c.value, "url": stack.base_url} for c in owner.cookies]
    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = chrome.new_context(locale="en-US")
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(f"{stack.base_url}{install}")
            page.get_by_role("button", name="Send a test order").click()
            page.get_by_role("heading", name=re.compile(r"^Test order rs-test-order-")).wait_for()
            attributed = page.locator('[data-stage="attributed"]')
            expect(attributed).to_contain_text("Done")  # in words, not only a colour or a tick
            # The page refreshes itself: the worker's stages tick without a reload.
            reward = page.locator('[data-stage="reward"]')
            expect(page.locator('[data-stage="fraud"]')).to_have_attribute("data-state", "done", timeout=90_000)
            expect(reward).to_have_attribute("data-state", "done", timeout=120_000)
            expect(reward).to_contain_text("Issued")
            expect(page.locator("#test-run")).to_have_attribute("data-finished", "true")
        finally:
            chrome.close()


def test_a_code_check_at_checkout_tells_what_the_friend_gets(stack, shop):
    api = stack.api(shop.live_key)
    anna = api.post("/api/v1/participants", json={"program": shop.program, "external_id": "anna", "name": "Anna"})
    assert anna.status_code == 201, anna.text
    check = api.get(f"/api/v1/codes/{anna.json()['code'].lower()}")
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["valid"] is True
    assert body["program"] == shop.program
    assert body["referee_rewards"], body  # the demo program's friend rule
    assert {reward["when"] for reward in body["referee_rewards"]} == {"signup"}
    assert api.get("/api/v1/codes/NOPE-2345").status_code == 404


def test_saving_an_active_program_without_rules_shows_the_guardrail_warning(stack, shop, owner):
    saved = owner.submit(
        "/admin/programs/program/add/",
        name="Summer friends", slug="summer-friends", status="active", landing_url="https://shop.example/summer",
        referrer_offer="10% of each friend's first order", referee_offer="10% off your first order",
    )  # fmt: skip
    assert saved.status_code == 302, saved.text[-3000:]
    shown = html.unescape(owner.get(saved.headers["Location"]).text)
    assert "Summer friends is active but has no active reward rule: nobody will be paid" in shown
    assert 'class="warning"' in shown  # a warning, not a success message
