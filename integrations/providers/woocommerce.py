"""WooCommerce: webhooks signed with the secret we give each webhook when we create it (`X-WC-Webhook-Signature`,
base64 HMAC-SHA256 of the raw body), the REST API (/wp-json/wc/v3) with the store's consumer key and secret, over
the small httpx client (integrations/http.py; the `woocommerce` package was last released in 2021).

Orders come from `order.created` and `order.updated` once paid (status processing or completed, `date_paid` set;
an order refunded or cancelled after payment was paid too), for the sum of its line items after discounts, before
shipping and taxes, in the store's currency. Refunds are not webhooks of their own: an order's `refunds` list grows,
and `order.updated` is sent. WooCommerce's delivery id changes on every send, so events are named by what they say
(the order, whether it is paid, its refund ids): the same state sent again is one event, a new refund a new one,
and each refund is recorded under its own id (`woocommerce:refund:<id>`), pro-rated from the order's total (which
has shipping and taxes) to the order's amount. A paid order cancelled refunds what remains.

Attribution, in order: the order meta `rs_click` / `ref` (or `referral_click_id` / `referral_code`, the hidden
fields referral.js adds to the checkout form, saved by a checkout-field plugin), the `ref` / `rs_click` of the
landing page WooCommerce's own order attribution keeps (`_wc_order_attribution_session_entry`), then a coupon code
that is a referral code or a friend's reward coupon.

Connecting: one click (/wc-auth/v1/authorize: the store posts us a key pair, integrations/services/woocommerce.py)
or a pasted `consumer_key:consumer_secret`; then we create our webhooks through the API, and delete them when the
shop is disconnected. Keys go as HTTP basic auth (https), or as query parameters for a server that drops the
Authorization header (`ck_...:cs_...:query`).
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
from urllib.parse import parse_qs, urlsplit

from django.utils.dateparse import parse_datetime

from integrations.http import PlatformClient, PlatformError
from integrations.models import Connection
from integrations.providers.base import (
    Action,
    BadPayload,
    Coupon,
    Fetched,
    Ignore,
    Inbound,
    Order,
    Provider,
    Refund,
    hmac_equal,
    load_json,
)
from integrations.providers.shopify import header
from referral_saas.money import quantize
from referral_saas.webhooks.sending import private_urls_allowed, url_refusal

API = "/wp-json/wc/v3"
WEBHOOK_TOPICS = ("order.created", "order.updated")
PAID_STATUSES = frozenset({"processing", "completed", "refunded", "cancelled"})
PING_RE = re.compile(rb"^webhook_id=\d{1,20}$")
CLICK_RE = re.compile(r"^[0-9a-f]{32}$")
CODE_RE = re.compile(r"^[A-Za-z0-9-]{3,32}$")
CLICK_KEYS = ("rs_click", "_rs_click", "referral_click_id", "_referral_click_id")
CODE_KEYS = ("ref", "_ref", "referral_code", "_referral_code")
LANDING_KEY = "_wc_order_attribution_session_entry"
WEBHOOK_NAME = "Referral SaaS: {topic}"
PAGE = 100


def sign(secret: str, body: bytes) -> str:
    """WooCommerce's webhook signature: base64 of HMAC-SHA256(the webhook's secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _money(value: object, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise BadPayload(f"{what} is not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise BadPayload(f"{what} is not an amount: {value!r}")
    return amount


def _order_id(payload: dict) -> str:
    order_id = payload.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).strip():
        raise BadPayload("The order has no id.")
    return str(order_id).strip()


def is_paid(payload: dict) -> bool:
    """Paid, now or before (a refunded or cancelled order that had been paid): `date_paid` is WooCommerce's mark."""
    return bool(payload.get("date_paid") or payload.get("date_paid_gmt")) and payload.get("status") in PAID_STATUSES


def _refund_ids(payload: dict) -> list[str]:
    return sorted(
        (str(r["id"]) for r in payload.get("refunds") or [] if isinstance(r, dict) and r.get("id")),
        key=lambda i: (len(i), i),
    )


def state_key(payload: dict) -> str:
    """What an order event says, as an event id: the order, paid or not (and how), its refunds. WooCommerce's
    delivery id changes on every send; this does not."""
    order_id = _order_id(payload)
    if not is_paid(payload):
        return f"order:{order_id}:unpaid:{payload.get('status') or ''}"
    state = "cancelled" if payload.get("status") == "cancelled" else "paid"
    refunds = ",".join(_refund_ids(payload))
    return f"order:{order_id}:{state}" + (f":refunds:{refunds}" if refunds else "")


def _meta(payload: dict) -> dict[str, str]:
    found = {}
    for item in payload.get("meta_data") or []:
        if isinstance(item, dict) and item.get("key") and isinstance(item.get("value"), str | int):
            found[str(item["key"]).strip().lower()] = str(item["value"]).strip()
    landing = found.get(LANDING_KEY, "")
    if landing:
        query = parse_qs(urlsplit(landing).query)
        for key in ("rs_click", "ref"):
            if query.get(key) and key not in found:
                found[key] = query[key][0].strip()
    return found


def _first(values: dict[str, str], keys: tuple[str, ...], pattern: re.Pattern) -> str | None:
    return next((values[k] for k in keys if pattern.match(values.get(k, ""))), None)


def _amount(payload: dict) -> Decimal:
    """The order after discounts, before shipping and taxes: its line items' totals (their fees are not ours)."""
    items = [i for i in payload.get("line_items") or [] if isinstance(i, dict)]
    if items:
        return sum((_money(i.get("total"), "line item total") for i in items), Decimal(0))
    total = _money(payload.get("total"), "total")
    return total - _money(payload.get("total_tax") or 0, "total_tax") - _money(payload.get("shipping_total") or 0, "")


def order_of(payload: dict) -> Order:
    order_id = _order_id(payload)
    currency = str(payload.get("currency") or "").upper()
    if not currency:
        raise BadPayload("The order has no currency.")
    meta = _meta(payload)
    billing = payload.get("billing") or {}
    customer = payload.get("customer_id")
    paid = payload.get("date_paid_gmt") or payload.get("date_created_gmt")
    placed = parse_datetime(str(paid or "")) if paid else None
    if placed is not None and placed.tzinfo is None:
        placed = placed.replace(tzinfo=UTC)  # the *_gmt fields are UTC without saying so
    return Order(
        order_id=f"woocommerce:{order_id}",
        amount=_amount(payload),
        currency=currency,
        customer_external_id=str(customer) if customer else None,  # 0 is a guest
        customer_email=billing.get("email") or None,
        click_id=_first(meta, CLICK_KEYS, CLICK_RE),
        code=_first(meta, CODE_KEYS, CODE_RE),
        discount_codes=[str(c.get("code")) for c in payload.get("coupon_lines") or [] if isinstance(c, dict)],
        occurred_at=placed,
        ip=payload.get("customer_ip_address") or None,
        user_agent=str(payload.get("customer_user_agent") or "")[:1024],
    )


def refunds_of(payload: dict, order: Order) -> list[Refund]:
    """Each refund of the order, as the same share of the order's amount as of its total (shipping, taxes)."""
    total = _money(payload.get("total"), "total")
    refunds = []
    for item in payload.get("refunds") or []:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        given = abs(_money(item.get("total"), "refund total"))  # WooCommerce lists them negative
        amount = quantize(order.amount * given / total, order.currency) if total > 0 else given
        reason = str(item.get("reason") or "")
        refunds.append(Refund(order.order_id, f"woocommerce:refund:{item['id']}", amount, reason))
    return refunds


class WooCommerce(Provider):
    name = "woocommerce"
    default_base_url = "{account}"
    makes_own_secret = True

    # inbound ----------------------------------------------------------------------------------------------------

    def signature_ok(self, *, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        given = header(headers, "X-WC-Webhook-Signature")
        return bool(given) and hmac_equal(sign(secret, body), given)

    def unsigned_ping(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        # Saving a webhook in WooCommerce posts `webhook_id=N`, unsigned, and disables the webhook unless it gets 2xx.
        return not header(headers, "X-WC-Webhook-Signature") and bool(PING_RE.match(body.strip()))

    def inbound(self, *, body: bytes, headers: Mapping[str, str]) -> Inbound:
        topic = header(headers, "X-WC-Webhook-Topic")
        if not topic:
            raise BadPayload("X-WC-Webhook-Topic is missing.")
        payload = load_json(body)
        if topic.startswith("order.") and payload.get("id"):
            return Inbound(state_key(payload), topic, f"woocommerce:{_order_id(payload)}")
        delivery = header(headers, "X-WC-Webhook-Delivery-ID") or str(payload.get("id") or "")
        if not delivery:
            raise BadPayload("X-WC-Webhook-Delivery-ID is missing.")
        return Inbound(f"{topic}:{delivery}", topic)

    def interpret(self, *, connection: Connection, topic: str, payload: dict) -> list[Action]:
        if topic not in WEBHOOK_TOPICS:
            return [Ignore(f"topic {topic} is not used")]
        if not is_paid(payload):
            return [Ignore(f"order not paid (status {payload.get('status')})")]
        order = order_of(payload)
        actions: list[Action] = [order, *refunds_of(payload, order)]
        if payload.get("status") == "cancelled":
            actions.append(Refund(order.order_id, f"{order.order_id}:cancelled", None, "order cancelled"))
        return actions

    # outbound ---------------------------------------------------------------------------------------------------

    def credentials_from(self, token: str) -> dict:
        """`consumer_key:consumer_secret`, optionally `:query` (keys as query parameters instead of basic auth)."""
        if not token:
            return {}
        key, _sep, rest = token.strip().partition(":")
        secret, _sep, mode = rest.partition(":")
        return {"consumer_key": key, "consumer_secret": secret, "auth": "query" if mode == "query" else "basic"}

    def client(self, connection: Connection) -> PlatformClient:
        credentials = connection.credentials or {}
        key, secret = credentials.get("consumer_key", ""), credentials.get("consumer_secret", "")
        if not key or not secret:
            raise PlatformError("This WooCommerce connection has no API keys (consumer key and secret).")
        basic = credentials.get("auth") != "query"
        # The store's address is the merchant's to type: never a way into our own network (unless allowed, as in
        # development). An operator's --base-url is trusted.
        refusal = None if connection.base_url else url_refusal(self.base_url(connection))
        if not refusal and not connection.base_url and not self.base_url(connection).startswith("https://"):
            # WooCommerce takes keys this way over https only (plain http needs OAuth 1.0a): never send them in clear.
            refusal = None if private_urls_allowed() else "the keys go over https only"
        if refusal:
            raise PlatformError(f"The store's address is refused: {refusal}")
        return PlatformClient(base_url=self.base_url(connection), headers={}, auth=(key, secret) if basic else None)

    def _call(self, connection: Connection, method: str, path: str, *, json_body=None, params=None) -> object:
        credentials = connection.credentials or {}
        params = dict(params or {})
        if credentials.get("auth") == "query":
            params.update(consumer_key=credentials["consumer_key"], consumer_secret=credentials["consumer_secret"])
        return self.client(connection).request(method, API + path, json=json_body, params=params or None)

    def check(self, *, connection: Connection) -> str:
        status = self._call(connection, "GET", "/system_status")
        environment = (status or {}).get("environment") or {} if isinstance(status, dict) else {}
        return f"WooCommerce {environment.get('version', '?')} at {environment.get('site_url', connection.account)}"

    def create_coupon(self, *, connection: Connection, coupon: Coupon) -> str:
        """POST /coupons: one use, once per customer. A code already taken is ours when its description is this
        reward's (an attempt whose answer was lost), or someone else's, and then the code gets a suffix."""
        for attempt in range(1, 6):
            code = coupon.code if attempt == 1 else f"{coupon.code}-{attempt}"
            body = {
                "code": code,
                "discount_type": "percent" if coupon.kind == "percent" else "fixed_cart",
                "amount": str(coupon.value),
                "usage_limit": 1,
                "usage_limit_per_user": 1,
                "description": coupon.title,
                **({"date_expires_gmt": _gmt(coupon.ends_at)} if coupon.ends_at else {}),
            }
            try:
                created = self._call(connection, "POST", "/coupons", json_body=body)
            except PlatformError as exc:
                if exc.status != 400 or "already_exists" not in str(exc):
                    raise
                if self._coupon_ours(connection, code, coupon.title):
                    return code
                continue
            if not isinstance(created, dict) or not created.get("id"):
                raise PlatformError(f"WooCommerce did not create the coupon {code}: {str(created)[:300]}")
            return code  # WooCommerce stores it lower-cased and matches it case-insensitively: ours as drawn
        raise PlatformError(f"WooCommerce: the coupon codes {coupon.code}, -2 ... -5 are all taken.")

    def _coupon_ours(self, connection: Connection, code: str, title: str) -> bool:
        found = self._call(connection, "GET", "/coupons", params={"code": code})
        return any(isinstance(c, dict) and c.get("description") == title for c in found or [])

    def reconcile(self, *, connection: Connection, since: datetime) -> Iterable[Fetched]:
        """Orders modified since `since`, as order.updated events under the webhooks' own ids (their state)."""
        params = {"modified_after": _gmt(since), "dates_are_gmt": "true", "orderby": "id", "order": "asc"}
        params["per_page"] = PAGE
        for page in range(1, 101):  # at most 10,000 orders a run; the next run goes on from there
            orders = self._call(connection, "GET", "/orders", params={**params, "page": page})
            if not isinstance(orders, list):
                raise PlatformError("WooCommerce answered something that is not a list of orders.")
            for order in orders:
                if isinstance(order, dict) and order.get("id"):
                    body = json.dumps(order, separators=(",", ":")).encode()
                    yield Fetched(state_key(order), "order.updated", body, f"woocommerce:{_order_id(order)}")
            if len(orders) < PAGE:
                return

    def install_webhooks(self, *, connection: Connection) -> list[str]:
        """Our webhooks on the store, signed with the connection's secret: order.created and order.updated (one of
        ours already there gets the current secret)."""
        existing = {w.get("topic"): w["id"] for w in self._ours(connection)}
        for topic in WEBHOOK_TOPICS:
            body = {"secret": connection.webhook_secret, "status": "active"}
            if topic in existing:  # connected again: the secret may be new
                self._call(connection, "PUT", f"/webhooks/{existing[topic]}", json_body=body)
                continue
            body.update(name=WEBHOOK_NAME.format(topic=topic), topic=topic, delivery_url=connection.webhook_url)
            self._call(connection, "POST", "/webhooks", json_body=body)
        return list(WEBHOOK_TOPICS)

    def remove_webhooks(self, *, connection: Connection) -> None:
        for webhook in self._ours(connection):
            self._call(connection, "DELETE", f"/webhooks/{webhook['id']}", params={"force": "true"})

    def _ours(self, connection: Connection) -> list[dict]:
        found = self._call(connection, "GET", "/webhooks", params={"per_page": 100})
        return [
            w
            for w in found or []
            if isinstance(w, dict) and w.get("id") and w.get("delivery_url") == connection.webhook_url
        ]


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
