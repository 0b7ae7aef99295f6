"""A Shopify shop connected without code, through gunicorn, a worker and beat: the shop's signed `orders/paid`
webhook becomes an attributed order, the referrer's reward coupon is created on the shop (whose API is down at
first: the reward waits, approved, and beat retries it; one coupon, issued once), and `refunds/create` pro-rates it.
The shop's Admin API is a real local HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from werkzeug import Request, Response

from integrations.providers.shopify import API_VERSION, sign
from tests.integrations.conftest import payload
from tests.system.stack import wait_for

pytestmark = pytest.mark.slow

GRAPHQL = f"/admin/api/{API_VERSION}/graphql.json"


class FlakyShopify:
    """The shop's Admin API: the first discountCodeBasicCreate fails (503), later ones succeed; everything logged."""

    def __init__(self):
        self.created: list[dict] = []
        self.failed = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        if "discountCodeBasicCreate" not in body["query"]:
            page = {"orders": {"pageInfo": {"hasNextPage": False}, "nodes": []}}
            return Response(json.dumps({"data": page}), content_type="application/json")
        with self.lock:
            if self.failed == 0:
                self.failed += 1
                return Response("upstream unavailable", status=503)
            self.created.append(body["variables"]["basicCodeDiscount"])
        data = {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://1"}, "userErrors": []}}
        return Response(json.dumps({"data": data}), content_type="application/json")


def _post(url: str, topic: str, data: dict, shop: str) -> requests.Response:
    body = json.dumps(data).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign("hush", body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": f"{topic}-{time.monotonic_ns()}",
    }
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_a_shopify_webhook_becomes_an_order_a_reward_and_a_coupon_on_the_shop_retried_when_it_is_down(
    stacks, httpserver
):
    stack = stacks(
        "procfile", name="shopify", env={"REWARDS_PLATFORM_RETRY_SECONDS": "1", "REWARDS_RELEASE_EVERY_SECONDS": "2"}
    )
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    shopify = FlakyShopify()
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_handler(shopify)
    domain = "system-test.myshopify.com"
    connected = stack.manage(
        "createconnection",
        "--merchant",
        shop.slug,
        "--provider",
        "shopify",
        "--account",
        domain,
        "--secret",
        "hush",
        "--token",
        "shpat_system",
        "--base-url",
        httpserver.url_for("/"),
        "--json",
    )
    webhook_url = json.loads(connected.stdout.strip().splitlines()[-1])["webhook_url"]
    assert webhook_url.startswith(stack.base_url)

    anna = api.post("/api/v1/participants", json={"program": shop.program, "external_id": "anna", "name": "Anna"})
    assert anna.status_code == 201, anna.text
    anna = anna.json()

    # A forged webhook is refused; the real one is answered at once, and again (the platform retries) once more.
    now = datetime.now(UTC).isoformat()  # the demo program started today
    order = payload(
        "shopify", "orders_paid", note_attributes=[{"name": "ref", "value": anna["code"]}], processed_at=now
    )
    forged = requests.post(webhook_url, data=json.dumps(order), headers={"X-Shopify-Hmac-Sha256": "x"}, timeout=30)
    assert forged.status_code == 401
    first = _post(webhook_url, "orders/paid", order, domain)
    assert first.status_code == 200, first.text
    assert _post(webhook_url, "orders/paid", order, domain).json()["duplicate"] is True

    # The worker records the order through the conversions service: attributed to Anna, after discounts.
    order_id = f"shopify:{order['id']}"
    conversion = wait_for(
        lambda: (r := api.get(f"/api/v1/conversions/{order_id}")).status_code == 200 and r.json(),
        what="the webhook's order to be recorded",
    )
    assert conversion["attributed"] is True
    assert conversion["referral"]["referrer"]["id"] == anna["id"]
    assert Decimal(conversion["amount"]) == Decimal("200.00")

    # The coupon: refused once by the shop (503), retried by beat, created once, issued once.
    def issued():
        rewards = api.get("/api/v1/rewards", params={"participant": anna["id"]}).json()["results"]
        return [r for r in rewards if r["status"] == "issued"]

    [reward] = wait_for(issued, timeout=120, what="the reward to be issued after the shop came back")
    assert shopify.failed == 1
    assert [c["code"] for c in shopify.created] == [reward["coupon_code"]]
    assert Decimal(reward["value"]) == Decimal("20.00")

    # A partial refund from the shop pro-rates the unused coupon reward, as the refunds API does.
    refunded = _post(webhook_url, "refunds/create", payload("shopify", "refunds_create"), domain)
    assert refunded.status_code == 200, refunded.text
    wait_for(
        lambda: Decimal(api.get(f"/api/v1/rewards/{reward['id']}").json()["value"]) == Decimal("15.00"),
        what="the shop's partial refund to pro-rate the reward",
    )
    assert Decimal(api.get(f"/api/v1/conversions/{order_id}").json()["refunded_amount"]) == Decimal("50.00")
    assert stack.server_errors() == []
