"""Shopify: webhooks signed with the app's client secret (X-Shopify-Hmac-Sha256, base64 HMAC-SHA256 of the raw
body), the Admin GraphQL API with the shop's offline access token (X-Shopify-Access-Token).

Orders come from `orders/paid` (not `orders/create`: an order is not a sale until paid), for the subtotal after
discounts in the shop's currency (`current_subtotal_price_set.shop_money`; shipping and taxes are not the
referral's doing). Attribution, in order: the cart attributes `rs_click` / `ref` that referral.js writes (they
arrive as the order's `note_attributes`), the `rs_click` / `ref` of the order's landing page, a discount code that
is a referral code or a friend's reward coupon. Refunds from `refunds/create` (the successful refund transactions),
`orders/cancelled` refunds what remains.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, urlsplit

from django.utils.dateparse import parse_datetime

from integrations.http import PlatformClient, PlatformError
from integrations.models import Connection
from integrations.providers.base import (
    Action,
    BadPayload,
    CustomerRequest,
    Disconnect,
    Ignore,
    Inbound,
    Order,
    Provider,
    Refund,
    hmac_equal,
    load_json,
)

API_VERSION = "2025-10"
CLICK_KEYS = ("rs_click", "_rs_click")
CODE_KEYS = ("ref", "_ref", "referral_code")


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by its HTTP name, from Django's META-style or plain mapping."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower().replace("_", "-").removeprefix("http-") == wanted:
            return value
    return ""


def sign(secret: str, body: bytes) -> str:
    """Shopify's webhook signature: base64 of HMAC-SHA256(client secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _money(value, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise BadPayload(f"{what} is not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise BadPayload(f"{what} is not an amount: {value!r}")
    return amount


def _attributes(order: dict) -> dict[str, str]:
    found = {}
    for item in order.get("note_attributes") or []:
        if isinstance(item, dict) and item.get("name"):
            found[str(item["name"]).strip().lower()] = str(item.get("value") or "").strip()
    landing = order.get("landing_site") or ""
    if landing:
        query = parse_qs(urlsplit(str(landing)).query)
        for key in (*CLICK_KEYS, *CODE_KEYS):
            if query.get(key) and key not in found:
                found[key] = query[key][0].strip()
    return found


def _first(values: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((values[key] for key in keys if values.get(key)), None)


def order_of(payload: dict) -> Order:
    if "id" not in payload:
        raise BadPayload("The order has no id.")
    money = ((payload.get("current_subtotal_price_set") or {}).get("shop_money")) or {}
    if money.get("amount") is not None:
        amount, currency = _money(money["amount"], "current_subtotal_price"), money.get("currency_code")
    else:
        amount = _money(payload.get("current_subtotal_price", payload.get("subtotal_price")), "subtotal_price")
        currency = payload.get("currency")
    if not currency:
        raise BadPayload("The order has no currency.")
    customer = payload.get("customer") or {}
    client = payload.get("client_details") or {}
    attributes = _attributes(payload)
    placed = parse_datetime(str(payload.get("processed_at") or payload.get("created_at") or "")) or None
    return Order(
        order_id=f"shopify:{payload['id']}",
        amount=amount,
        currency=str(currency).upper(),
        customer_external_id=str(customer["id"]) if customer.get("id") else None,
        customer_email=payload.get("email") or customer.get("email") or payload.get("contact_email") or None,
        click_id=_first(attributes, CLICK_KEYS),
        code=_first(attributes, CODE_KEYS),
        discount_codes=[str(d.get("code")) for d in payload.get("discount_codes") or [] if isinstance(d, dict)],
        occurred_at=placed,
        ip=payload.get("browser_ip") or client.get("browser_ip") or None,
        user_agent=str(client.get("user_agent") or "")[:1024],
    )


def refund_of(payload: dict) -> Refund:
    if "id" not in payload or "order_id" not in payload:
        raise BadPayload("The refund has no id or order_id.")
    refunded = sum(
        (
            _money(t.get("amount"), "transaction amount")
            for t in payload.get("transactions") or []
            if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
        ),
        Decimal(0),
    )
    return Refund(
        order_id=f"shopify:{payload['order_id']}",
        refund_id=f"shopify:refund:{payload['id']}",
        amount=refunded,
        reason=str(payload.get("note") or "")[:300],
    )


class Shopify(Provider):
    name = "shopify"
    default_base_url = "https://{account}"

    # inbound ----------------------------------------------------------------------------------------------------

    def signature_ok(self, *, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        given = header(headers, "X-Shopify-Hmac-Sha256")
        return bool(given) and hmac_equal(sign(secret, body), given)

    def verify(self, *, connection: Connection, body: bytes, headers: Mapping[str, str]) -> bool:
        shop = header(headers, "X-Shopify-Shop-Domain").lower()
        if shop and connection.account.endswith(".myshopify.com") and shop != connection.account:
            return False  # signed by the app, but for another shop than this connection's
        return super().verify(connection=connection, body=body, headers=headers)

    def inbound(self, *, body: bytes, headers: Mapping[str, str]) -> Inbound:
        topic = header(headers, "X-Shopify-Topic")
        if not topic:
            raise BadPayload("X-Shopify-Topic is missing.")
        payload = load_json(body)
        delivery = header(headers, "X-Shopify-Event-Id") or header(headers, "X-Shopify-Webhook-Id")
        # Orders and refunds are named by what they are about, so that a webhook sent again under a new id and the
        # same order found by reconciliation are one event.
        if topic in ("orders/paid", "orders/cancelled") and payload.get("id"):
            return Inbound(f"{topic}:{payload['id']}", topic, f"shopify:{payload['id']}")
        if topic == "refunds/create" and payload.get("id"):
            return Inbound(f"{topic}:{payload['id']}", topic, f"shopify:{payload.get('order_id')}")
        if not delivery:
            raise BadPayload("X-Shopify-Webhook-Id is missing.")
        return Inbound(f"{topic}:{delivery}", topic)

    def interpret(self, *, connection: Connection, topic: str, payload: dict) -> list[Action]:
        if topic == "orders/paid":
            if payload.get("test") and connection.livemode:
                return [Ignore("a test order on a live connection")]
            return [order_of(payload)]
        if topic == "refunds/create":
            return [refund_of(payload)]
        if topic == "orders/cancelled":
            if not payload.get("id"):
                raise BadPayload("The order has no id.")
            return [Refund(f"shopify:{payload['id']}", f"shopify:cancel:{payload['id']}", None, "order cancelled")]
        if topic == "app/uninstalled":
            return [Disconnect("the app was uninstalled from the shop")]
        if topic == "shop/redact":
            return [Disconnect("the shop asked for its data to be erased (shop/redact)")]
        if topic in ("customers/data_request", "customers/redact"):
            customer = payload.get("customer") or {}
            request_id = str((payload.get("data_request") or {}).get("id") or "")
            return [
                CustomerRequest(
                    kind="export" if topic == "customers/data_request" else "erase",
                    external_id=str(customer["id"]) if customer.get("id") else None,
                    email=customer.get("email"),
                    request_id=request_id,
                )
            ]
        return [Ignore(f"topic {topic} is not used")]

    # outbound ---------------------------------------------------------------------------------------------------

    def client(self, connection: Connection) -> PlatformClient:
        token = (connection.credentials or {}).get("access_token", "")
        return PlatformClient(
            base_url=self.base_url(connection),
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
        )

    def graphql(self, connection: Connection, query: str, variables: dict | None = None) -> dict:
        answer = self.client(connection).post(
            f"/admin/api/{API_VERSION}/graphql.json", {"query": query, "variables": variables or {}}
        )
        if not isinstance(answer, dict):
            raise PlatformError("Shopify answered something that is not a GraphQL response.")
        if answer.get("errors"):
            errors = answer["errors"]
            throttled = any(
                isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
                for e in (errors if isinstance(errors, list) else [])
            )
            raise PlatformError(f"Shopify GraphQL errors: {errors}"[:1000], transient=throttled)
        return answer.get("data") or {}

    def check(self, *, connection: Connection) -> str:
        data = self.graphql(connection, "{ shop { name myshopifyDomain currencyCode } }")
        shop = data.get("shop") or {}
        return f"{shop.get('name')} ({shop.get('myshopifyDomain')}, {shop.get('currencyCode')})"
