"""A Stripe account and a WooCommerce store connected without code, through gunicorn, a worker and beat: their
signed webhooks become attributed orders, the referrer's reward coupon is created on the platform (whose API is
down at first: the reward waits, approved, and beat retries it; one coupon, issued once), and a partial refund
pro-rates the reward. Both platforms' APIs are one real local HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from werkzeug import Request, Response

from integrations.providers import stripe as stripe_provider
from integrations.providers import woocommerce
from tests.integrations.conftest import payload
from tests.system.stack import wait_for

pytestmark = pytest.mark.slow

STRIPE_SECRET = "whsec_system_test_0123456789"
WOO_SECRET = "woo-system-secret-0123456789"
CK, CS = "ck_" + "c3" * 20, "cs_" + "d4" * 20


class FlakyPlatforms:
    """Stripe's and WooCommerce's APIs: the first coupon call of each fails (503), later ones succeed; the lists
    reconciliation asks for are empty; every coupon made is kept."""

    def __init__(self):
        self.failed: dict[str, int] = {"stripe": 0, "woocommerce": 0}
        self.codes: dict[str, list[str]] = {"stripe": [], "woocommerce": []}
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        path = request.path
        if request.method == "GET":
            empty = [] if path.startswith("/wp-json/") else {"object": "list", "data": [], "has_more": False}
            return Response(json.dumps(empty), content_type="application/json")
        platform = "woocommerce" if path.startswith("/wp-json/") else "stripe"
        with self.lock:
            if path in ("/v1/coupons", "/wp-json/wc/v3/coupons") and not self.failed[platform]:
                self.failed[platform] += 1
                return Response("upstream unavailable", status=503)
            if path == "/v1/promotion_codes":
                self.codes["stripe"].append(request.form["code"])
            if path == "/wp-json/wc/v3/coupons":
                self.codes["woocommerce"].append(json.loads(request.get_data())["code"])
        return Response(json.dumps({"id": "x1", "object": "coupon"}), status=200, content_type="application/json")


def _connect(stack, merchant, provider: str, account: str, secret: str, token: str, base_url: str) -> str:
    connected = stack.manage(
        "createconnection", "--merchant", merchant.slug, "--provider", provider, "--account", account,
        "--secret", secret, "--token", token, "--base-url", base_url, "--json",
    )  # fmt: skip
    return json.loads(connected.stdout.strip().splitlines()[-1])["webhook_url"]


def _issued_reward(api, participant_id: int, platforms: FlakyPlatforms, platform: str) -> dict:
    def issued():
        rewards = api.get("/api/v1/rewards", params={"participant": participant_id}).json()["results"]
        return [r for r in rewards if r["status"] == "issued"]

    [reward] = wait_for(issued, timeout=120, what=f"the reward to be issued after {platform} came back")
    assert platforms.failed[platform] == 1
    assert platforms.codes[platform] == [reward["coupon_code"]]  # one coupon, for this reward
    assert Decimal(reward["value"]) == Decimal("20.00")
    return reward


def _order(api, order_id: str, *, referrer_id: int) -> dict:
    conversion = wait_for(
        lambda: (r := api.get(f"/api/v1/conversions/{order_id}")).status_code == 200 and r.json(),
        what=f"the webhook's order {order_id} to be recorded",
    )
    assert conversion["attributed"] is True
    assert conversion["referral"]["referrer"]["id"] == referrer_id
    assert Decimal(conversion["amount"]) == Decimal("200.00")  # after discounts, before tax and shipping
    return conversion


def _join(api, program: str) -> dict:
    anna = api.post("/api/v1/participants", json={"program": program, "external_id": "anna", "name": "Anna"})
    assert anna.status_code == 201, anna.text
    return anna.json()


def _stripe_post(url: str, data: dict) -> requests.Response:
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": stripe_provider.sign(STRIPE_SECRET, body)}
    return requests.post(url, data=body, headers=headers, timeout=30)


def _woo_post(url: str, topic: str, data: dict) -> requests.Response:
    body = json.dumps(data).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": woocommerce.sign(WOO_SECRET, body),
        "X-WC-Webhook-Delivery-ID": str(time.monotonic_ns()),  # a new one on every send, as WooCommerce does
    }
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_stripe_and_woocommerce_webhooks_become_orders_coupons_retried_when_down_and_pro_rated_refunds(
    stacks, httpserver
):
    stack = stacks(
        "procfile", name="stripe-woo", env={"REWARDS_PLATFORM_RETRY_SECONDS": "1", "REWARDS_RELEASE_EVERY_SECONDS": "2"}
    )
    platforms = FlakyPlatforms()
    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(platforms)
    base_url = httpserver.url_for("/")

    # Two shops, connected by the command scripts use: one sells through Stripe, one is a WooCommerce store.
    seller, store = stack.createmerchant(), stack.createmerchant()
    stripe_api, woo_api = stack.api(seller.live_key), stack.api(store.live_key)
    stripe_url = _connect(stack, seller, "stripe", "acct_1System", STRIPE_SECRET, "rk_live_system", base_url)
    woo_url = _connect(stack, store, "woocommerce", "https://shop.example.pl", WOO_SECRET, f"{CK}:{CS}", base_url)
    anna_stripe, anna_woo = _join(stripe_api, seller.program), _join(woo_api, store.program)

    # Stripe: a forged event is refused; the paid Checkout Session, sent twice, is one event and one order.
    checkout = payload("stripe", "checkout_session_completed")
    checkout["data"]["object"].update(client_reference_id=anna_stripe["code"], created=int(time.time()) - 60)
    forged = requests.post(stripe_url, data=json.dumps(checkout), headers={"Stripe-Signature": "t=1,v1=00"}, timeout=30)
    assert forged.status_code == 401
    assert _stripe_post(stripe_url, checkout).status_code == 200
    assert _stripe_post(stripe_url, checkout).json()["duplicate"] is True

    # WooCommerce: the unsigned ping of a new webhook is 200 (or WooCommerce disables it); order.created, sent again
    # with a new delivery id, is one event and one order.
    ping = requests.post(
        woo_url, data=b"webhook_id=14", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30
    )
    assert ping.status_code == 200
    paid = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    order = payload("woocommerce", "order")
    meta = [{"id": 1, "key": "ref", "value": anna_woo["code"]}]
    order.update(date_paid_gmt=paid, date_created_gmt=paid, meta_data=meta)
    assert _woo_post(woo_url, "order.created", order).status_code == 200
    assert _woo_post(woo_url, "order.created", order).json()["duplicate"] is True

    # The worker records both orders; each reward's coupon is refused once by its platform, retried by beat, made
    # once and issued once.
    stripe_order = "stripe:" + checkout["data"]["object"]["payment_intent"]
    _order(stripe_api, stripe_order, referrer_id=anna_stripe["id"])
    _order(woo_api, "woocommerce:727", referrer_id=anna_woo["id"])
    stripe_reward = _issued_reward(stripe_api, anna_stripe["id"], platforms, "stripe")
    woo_reward = _issued_reward(woo_api, anna_woo["id"], platforms, "woocommerce")

    # A quarter refunded on each platform (58.42 of the 233.70 PLN charged; 64.00 of the 256.00 total, tax and
    # shipping included) is a quarter of the order: the rewards are pro-rated as the refunds API would.
    assert _stripe_post(stripe_url, payload("stripe", "charge_refunded")).status_code == 200
    refunded = {**order, "refunds": [{"id": 730, "reason": "", "total": "-64.00"}]}
    assert _woo_post(woo_url, "order.updated", refunded).status_code == 200
    for api, reward in ((stripe_api, stripe_reward), (woo_api, woo_reward)):
        wait_for(
            lambda api=api, reward=reward: (
                Decimal(api.get(f"/api/v1/rewards/{reward['id']}").json()["value"]) == Decimal("15.00")
            ),
            what="the platform's partial refund to pro-rate the reward",
        )
    assert Decimal(stripe_api.get(f"/api/v1/conversions/{stripe_order}").json()["refunded_amount"]) == Decimal("50")
    assert stack.server_errors() == []
