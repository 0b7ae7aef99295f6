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
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.http import PlatformClient, PlatformError
from integrations.models import Connection
from integrations.providers.base import (
    Action,
    BadPayload,
    Coupon,
    CustomerRequest,
    Disconnect,
    Fetched,
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
GA_CLIENT_ID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,20}$")  # referral.js's `_ga_client_id` cart attribute


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
        ga_client_id=ga if GA_CLIENT_ID.match(ga := attributes.get("_ga_client_id", "")) else "",
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
                    order_refs=[f"shopify:{o}" for o in payload.get("orders_to_redact") or []],
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

    def create_coupon(self, *, connection: Connection, coupon: Coupon) -> str:
        """discountCodeBasicCreate: one use, once per customer, from now until the reward's coupon expires.
        Shopify answers refusals inside a 200 (`userErrors`); a taken code is either ours already (created by an
        attempt whose answer we lost: same title) or someone else's, and then the code gets a suffix."""
        value = (
            {"percentage": float(coupon.value / 100)}
            if coupon.kind == "percent"
            else {"discountAmount": {"amount": str(coupon.value), "appliesOnEachItem": False}}
        )
        for attempt in range(1, 6):
            code = coupon.code if attempt == 1 else f"{coupon.code}-{attempt}"
            discount = {
                "title": coupon.title,
                "code": code,
                "startsAt": timezone.now().isoformat(),
                "endsAt": coupon.ends_at.isoformat() if coupon.ends_at else None,
                "usageLimit": 1,
                "appliesOncePerCustomer": True,
                "context": {"all": "ALL"},
                "customerGets": {"value": value, "items": {"all": True}},
            }
            data = self.graphql(connection, DISCOUNT_CREATE, {"basicCodeDiscount": discount})
            result = data.get("discountCodeBasicCreate") or {}
            errors = result.get("userErrors") or []
            if not errors and result.get("codeDiscountNode"):
                return code
            if not any(_taken(error) for error in errors):
                messages = "; ".join(str(e.get("message")) for e in errors) or "no discount was created"
                raise PlatformError(f"Shopify refused the discount code {code}: {messages}")
            if self._ours(connection, code, coupon.title):
                return code
        raise PlatformError(f"Shopify: the discount codes {coupon.code}, -2 ... -5 are all taken.")

    def _ours(self, connection: Connection, code: str, title: str) -> bool:
        data = self.graphql(connection, DISCOUNT_BY_CODE, {"code": code})
        node = data.get("codeDiscountNodeByCode") or {}
        return ((node.get("codeDiscount") or {}).get("title")) == title

    def reconcile(self, *, connection: Connection, since: datetime) -> Iterable[Fetched]:
        """Orders updated since `since` (paid ones, their refunds, cancellations), in the webhooks' own shapes and
        under the same event ids: an event the webhook brought already is not stored twice."""
        cursor = None
        query = f"updated_at:>='{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        for _page in range(100):  # at most 5,000 orders a run; the next run goes on from the last one seen
            data = self.graphql(connection, ORDERS_SINCE, {"query": query, "after": cursor})
            orders = data.get("orders") or {}
            for node in orders.get("nodes") or []:
                yield from _fetched(node)
            page = orders.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            cursor = page.get("endCursor")

    def install_webhooks(self, *, connection: Connection) -> list[str]:
        """Subscribe our endpoint to the topics we use (the GDPR ones are set in the app's configuration)."""
        installed = []
        for topic in WEBHOOK_TOPICS:
            data = self.graphql(
                connection,
                WEBHOOK_CREATE,
                {"topic": topic, "sub": {"callbackUrl": connection.webhook_url, "format": "JSON"}},
            )
            errors = (data.get("webhookSubscriptionCreate") or {}).get("userErrors") or []
            if errors and not all("taken" in str(e.get("message", "")).lower() for e in errors):
                raise PlatformError(f"Shopify refused the webhook {topic}: {errors}"[:500])
            installed.append(topic)
        return installed

    def remove_webhooks(self, *, connection: Connection) -> None:
        data = self.graphql(connection, WEBHOOKS_LIST, {"url": connection.webhook_url})
        for node in (data.get("webhookSubscriptions") or {}).get("nodes") or []:
            self.graphql(connection, WEBHOOK_DELETE, {"id": node["id"]})


def _taken(error: dict) -> bool:
    return error.get("code") == "TAKEN" or "unique" in str(error.get("message", "")).lower()


def _legacy_id(node: dict) -> str:
    return str(node.get("legacyResourceId") or str(node.get("id", "")).rsplit("/", 1)[-1])


def _fetched(node: dict) -> Iterable[Fetched]:
    """A GraphQL order as the webhooks would have sent it: orders/paid, refunds/create, orders/cancelled."""
    order_id = _legacy_id(node)
    ref = f"shopify:{order_id}"
    money = ((node.get("currentSubtotalPriceSet") or {}).get("shopMoney")) or {}
    customer = node.get("customer") or {}
    if node.get("displayFinancialStatus") in PAID_STATUSES:
        order = {
            "id": int(order_id) if order_id.isdigit() else order_id,
            "current_subtotal_price_set": {
                "shop_money": {"amount": money.get("amount"), "currency_code": money.get("currencyCode")}
            },
            "currency": money.get("currencyCode"),
            "email": node.get("email"),
            "customer": {"id": _legacy_id(customer), "email": customer.get("email")} if customer else None,
            "note_attributes": [
                {"name": a.get("key"), "value": a.get("value")} for a in node.get("customAttributes") or []
            ],
            "discount_codes": [{"code": c} for c in node.get("discountCodes") or []],
            "processed_at": node.get("processedAt"),
            "test": bool(node.get("test")),
        }
        yield Fetched(f"orders/paid:{order_id}", "orders/paid", json.dumps(order).encode(), ref)
    for refund in node.get("refunds") or []:
        refund_id = _legacy_id(refund)
        transactions = [
            {
                "kind": str(t.get("kind", "")).lower(),
                "status": str(t.get("status", "")).lower(),
                "amount": ((t.get("amountSet") or {}).get("shopMoney") or {}).get("amount"),
            }
            for t in ((refund.get("transactions") or {}).get("nodes") or [])
        ]
        body = {
            "id": int(refund_id) if refund_id.isdigit() else refund_id,
            "order_id": order_id,
            "note": refund.get("note"),
            "created_at": refund.get("createdAt"),
            "transactions": transactions,
        }
        yield Fetched(f"refunds/create:{refund_id}", "refunds/create", json.dumps(body).encode(), ref)
    if node.get("cancelledAt"):
        body = {"id": int(order_id) if order_id.isdigit() else order_id, "cancelled_at": node["cancelledAt"]}
        yield Fetched(f"orders/cancelled:{order_id}", "orders/cancelled", json.dumps(body).encode(), ref)


PAID_STATUSES = {"PAID", "PARTIALLY_REFUNDED", "REFUNDED"}
WEBHOOK_TOPICS = ("ORDERS_PAID", "REFUNDS_CREATE", "ORDERS_CANCELLED", "APP_UNINSTALLED")

DISCOUNT_CREATE = """
mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
"""
DISCOUNT_BY_CODE = """
query codeDiscountNodeByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { id codeDiscount { ... on DiscountCodeBasic { title } } }
}
"""
ORDERS_SINCE = """
query orders($query: String!, $after: String) {
  orders(first: 50, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId email processedAt cancelledAt test displayFinancialStatus discountCodes
      customAttributes { key value }
      currentSubtotalPriceSet { shopMoney { amount currencyCode } }
      customer { id legacyResourceId email }
      refunds(first: 20) {
        id legacyResourceId note createdAt
        transactions(first: 20) { nodes { kind status amountSet { shopMoney { amount currencyCode } } } }
      }
    }
  }
}
"""
WEBHOOK_CREATE = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""
WEBHOOKS_LIST = """
query webhookSubscriptions($url: URL) {
  webhookSubscriptions(first: 50, callbackUrl: $url) { nodes { id } }
}
"""
WEBHOOK_DELETE = """
mutation webhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } }
}
"""


# --- OAuth: installing the standalone app ---------------------------------------------------------------------------

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def oauth_query_valid(query: Mapping[str, str], secret: str) -> bool:
    """Shopify's request signature on an install or callback URL: HMAC-SHA256 (hex) of the other parameters,
    sorted by name and joined as name=value with '&'."""
    given = query.get("hmac", "")
    message = "&".join(f"{key}={value}" for key, value in sorted(query.items()) if key not in ("hmac", "signature"))
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return bool(given) and hmac_equal(expected, given)


def oauth_base_url(shop: str) -> str:
    return settings.SHOPIFY_OAUTH_BASE_URL or f"https://{shop}"


def authorize_url(*, shop: str, state: str, redirect_uri: str) -> str:
    """Where the merchant approves the app: an offline token (no per-user grant option) for our scopes."""
    query = urlencode(
        {
            "client_id": settings.SHOPIFY_CLIENT_ID,
            "scope": settings.SHOPIFY_SCOPES,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{oauth_base_url(shop)}/admin/oauth/authorize?{query}"


def exchange_code(*, shop: str, code: str) -> str:
    """The authorization code for the shop's offline access token."""
    client = PlatformClient(base_url=oauth_base_url(shop), headers={"Accept": "application/json"})
    answer = client.post(
        "/admin/oauth/access_token",
        {"client_id": settings.SHOPIFY_CLIENT_ID, "client_secret": settings.SHOPIFY_CLIENT_SECRET, "code": code},
    )
    token = (answer or {}).get("access_token") if isinstance(answer, dict) else None
    if not token:
        raise PlatformError("Shopify did not give an access token.")
    return token
