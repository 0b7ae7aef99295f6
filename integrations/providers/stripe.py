"""Stripe: webhooks signed with the endpoint's signing secret (`Stripe-Signature`, checked by the `stripe` package
with its 5-minute tolerance), the API through the `stripe` package with a restricted key, at a pinned API version.

Orders: `checkout.session.completed` when `payment_status` is `paid` (an asynchronous payment, a bank debit, is
not paid yet: `checkout.session.async_payment_succeeded` follows when it is), and `invoice.paid` (subscriptions,
invoices). One payment is one order: a Checkout Session that made an invoice and that invoice's `invoice.paid` are
both `stripe:<invoice id>`; a one-off payment is `stripe:<payment intent id>`. The amount is after discounts, before
shipping and taxes (a session's `amount_subtotal - total_details.amount_discount`, an invoice's
`total_excluding_tax`), in the payment's currency, read from Stripe's minor units with Stripe's own exponent per
currency (JPY has none, KWD three, ISK two in the API although it has none in ISO 4217).

Attribution: `client_reference_id`, or the metadata keys `rs_click` / `ref`, which referral.js gives a Payment
Link or a Checkout Session; then the promotion code typed at checkout when it is a referral code or a friend's
reward coupon. A subscription's first invoice takes them from the Checkout Session that created the subscription.

Refunds: `charge.refunded` is sent on every refund of a charge, with the charge's running total: each refund of the
charge is recorded under its own id (`stripe:<re_ id>`), pro-rated from what was charged (taxes, shipping) to the
order's amount; a charge refunded in full (`amount_refunded == amount`) refunds what remains of the order.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import stripe

from integrations.http import TIMEOUT, PlatformError
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
    load_json,
)
from integrations.providers.shopify import header
from referral_saas.money import quantize
from tracking.selectors import conversion_list

# Pinned: requests and the objects they return have this version's shape whatever the account's default is
# (the `stripe` package's own pin when this was written; promotion codes take `promotion[coupon]` since 2025-09).
API_VERSION = "2026-02-25.clover"
TOLERANCE = stripe.Webhook.DEFAULT_TOLERANCE  # 300 s: an older signed request is a replay
ORDER_TOPICS = ("checkout.session.completed", "checkout.session.async_payment_succeeded", "invoice.paid")
REFUND_TOPICS = ("charge.refunded",)
TOPICS = (*ORDER_TOPICS, *REFUND_TOPICS)

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal; every other currency has two in the API
# (ISK, HUF, TWD included, although ISK has none in ISO 4217: Stripe keeps its two for compatibility).
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
CLICK_RE = re.compile(r"^[0-9a-f]{32}$")
CODE_RE = re.compile(r"^[A-Za-z0-9-]{3,32}$")
CLICK_KEYS = ("rs_click", "rs_click_id", "referral_click_id")
CODE_KEYS = ("ref", "rs_ref", "referral_code")


def exponent(currency: str) -> int:
    """How many decimals Stripe's integer amounts in `currency` have."""
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def from_minor(value: object, currency: str, what: str = "amount") -> Decimal:
    """Stripe's integer amount (1999 USD cents, 500 JPY) as a Decimal in the currency's units (19.99, 500)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadPayload(f"{what} is not an integer amount: {value!r}")
    return Decimal(value).scaleb(-exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """A Decimal amount in the currency's units as Stripe's integer amount (three-decimal ones end in 0)."""
    minor = int(amount.scaleb(exponent(currency)).to_integral_value())
    return minor - minor % 10 if exponent(currency) == 3 else minor


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe makes it: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">."""
    timestamp = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    mac = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return f"t={timestamp},v1={mac}"


def _object(payload: dict) -> dict:
    obj = (payload.get("data") or {}).get("object")
    if not isinstance(obj, dict) or not obj.get("id"):
        raise BadPayload("The event has no data.object.")
    return obj


def _id(value: object) -> str:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _touch(obj: dict) -> tuple[str | None, str | None]:
    """(click id, referral code) from client_reference_id and the metadata referral.js fills in."""
    metadata = {str(k).lower(): str(v).strip() for k, v in (obj.get("metadata") or {}).items() if v}
    click = next((metadata[k] for k in CLICK_KEYS if CLICK_RE.match(metadata.get(k, ""))), None)
    code = next((metadata[k] for k in CODE_KEYS if CODE_RE.match(metadata.get(k, ""))), None)
    reference = str(obj.get("client_reference_id") or "").strip()
    if reference.startswith(("rs_", "rs-")):
        reference = reference[3:]
    if CLICK_RE.match(reference):
        click = click or reference
    elif CODE_RE.match(reference):
        code = code or reference
    return click, code


def _when(timestamp: object) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if isinstance(timestamp, int) and timestamp > 0 else None


def order_ref_of(topic: str, obj: dict) -> str:
    """The order an event is about, "stripe:<invoice id or payment intent id>" ("" when it cannot be told)."""
    if topic.startswith("checkout.session."):
        business = _id(obj.get("invoice")) or _id(obj.get("payment_intent"))
    elif topic == "invoice.paid":
        business = obj["id"]
    elif topic == "charge.refunded":
        # A charge names its invoice only in API versions before 2025-03 (the endpoint's version shapes it).
        business = _id(obj.get("invoice")) or _id(obj.get("payment_intent"))
    else:
        business = ""
    return f"stripe:{business}" if business else ""


def _error(exc: stripe.StripeError) -> PlatformError:
    transient = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (exc.http_status or 0) >= 500
    return PlatformError(f"Stripe: {type(exc).__name__}: {exc.user_message or exc}"[:1000],
                         status=exc.http_status, transient=transient)  # fmt: skip


class Stripe(Provider):
    name = "stripe"
    default_base_url = stripe.DEFAULT_API_BASE
    makes_own_secret = True

    # inbound ----------------------------------------------------------------------------------------------------

    def signature_ok(self, *, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        given = header(headers, "Stripe-Signature")
        if not given:
            return False
        try:
            return stripe.WebhookSignature.verify_header(body.decode("utf-8"), given, secret, tolerance=TOLERANCE)
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            return False

    def inbound(self, *, body: bytes, headers: Mapping[str, str]) -> Inbound:
        payload = load_json(body)
        event_id, topic = str(payload.get("id") or ""), str(payload.get("type") or "")
        if not event_id.startswith("evt_") or not topic:
            raise BadPayload("Not a Stripe event (no evt_ id or type).")
        obj = (payload.get("data") or {}).get("object") or {}
        # Stripe's event id is the same however often it is sent and in events.list (reconciliation): stored once.
        return Inbound(event_id, topic, order_ref_of(topic, obj) if isinstance(obj, dict) else "")

    def interpret(self, *, connection: Connection, topic: str, payload: dict) -> list[Action]:
        if topic not in TOPICS:
            return [Ignore(f"event {topic} is not used")]
        if bool(payload.get("livemode", True)) != connection.livemode:
            return [Ignore("a test-mode event on a live connection" if connection.livemode else "a live event")]
        obj = _object(payload)
        if topic == "checkout.session.completed" and obj.get("payment_status") != "paid":
            return [Ignore(f"checkout not paid ({obj.get('payment_status')}): async_payment_succeeded will follow")]
        if topic.startswith("checkout.session."):
            return [self._session_order(connection, obj)]
        if topic == "invoice.paid":
            if not obj.get("amount_paid"):
                return [Ignore("nothing was paid (a trial, a zero invoice)")]
            return [self._invoice_order(connection, obj)]
        return self._charge_refunds(connection, obj)

    def _session_order(self, connection: Connection, session: dict) -> Order:
        currency = str(session.get("currency") or "").upper()
        if not currency or session.get("amount_subtotal") is None:
            raise BadPayload("The Checkout Session has no currency or amount_subtotal.")
        ref = order_ref_of("checkout.session.completed", session)
        if not ref:
            raise BadPayload("The Checkout Session names no invoice and no payment intent.")
        discount = (session.get("total_details") or {}).get("amount_discount") or 0
        subtotal = from_minor(session["amount_subtotal"], currency, "amount_subtotal")
        click, code = _touch(session)
        details = session.get("customer_details") or {}
        return Order(
            order_id=ref,
            amount=subtotal - from_minor(discount, currency, "amount_discount"),
            currency=currency,
            customer_external_id=_id(session.get("customer")) or None,
            customer_email=details.get("email") or session.get("customer_email") or None,
            click_id=click,
            code=code,
            discount_codes=[] if code else self._promotion_codes(connection, session.get("discounts")),
            occurred_at=_when(session.get("created")),
        )

    def _invoice_order(self, connection: Connection, invoice: dict) -> Order:
        currency = str(invoice.get("currency") or "").upper()
        if not currency:
            raise BadPayload("The invoice has no currency.")
        if invoice.get("total_excluding_tax") is not None:
            amount = from_minor(invoice["total_excluding_tax"], currency, "total_excluding_tax")
        else:
            discounts = sum(int(d.get("amount") or 0) for d in invoice.get("total_discount_amounts") or [])
            amount = from_minor(invoice.get("subtotal"), currency, "subtotal") - from_minor(discounts, currency)
        click, code = _touch(invoice)
        subscription = (invoice.get("parent") or {}).get("subscription_details") or {}
        if not (click or code):
            click, code = _touch({"metadata": subscription.get("metadata")})
        if not (click or code) and invoice.get("billing_reason") == "subscription_create":
            session = self._session_of(connection, _id(subscription.get("subscription") or invoice.get("subscription")))
            if session:
                click, code = _touch(session)
        return Order(
            order_id=f"stripe:{invoice['id']}",
            amount=amount,
            currency=currency,
            customer_external_id=_id(invoice.get("customer")) or None,
            customer_email=invoice.get("customer_email") or None,
            click_id=click,
            code=code,
            discount_codes=[] if code else self._promotion_codes(connection, invoice.get("discounts")),
            occurred_at=_when((invoice.get("status_transitions") or {}).get("paid_at") or invoice.get("created")),
        )

    def _charge_refunds(self, connection: Connection, charge: dict) -> list[Action]:
        currency = str(charge.get("currency") or "").upper()
        charged, refunded = charge.get("amount"), charge.get("amount_refunded")
        if not currency or not isinstance(charged, int) or not isinstance(refunded, int) or charged <= 0:
            raise BadPayload("The charge has no currency, amount or amount_refunded.")
        order_ref = self._charge_order(connection, charge)
        if not order_ref:
            raise BadPayload("The charge names no payment intent or invoice.")
        order_amount = _order_amount(connection, order_ref)
        actions: list[Action] = []
        for refund in self._refunds_of(connection, charge):
            if refund.get("status") in ("failed", "canceled") or not refund.get("id"):
                continue
            part = int(refund.get("amount") or 0)
            # What of the order this refund takes back: the same share of it as of the charge (which may include
            # taxes and shipping the order's amount leaves out). Unknown until the order is here (then it waits).
            amount = (
                from_minor(part, currency)
                if order_amount is None
                else quantize(order_amount * Decimal(part) / Decimal(charged), currency)
            )
            actions.append(Refund(order_ref, f"stripe:{refund['id']}", amount, str(refund.get("reason") or "")))
        if refunded >= charged:
            actions.append(Refund(order_ref, f"stripe:{charge['id']}:full", None, "charge refunded in full"))
        return actions or [Ignore("no refund on this charge")]

    def _charge_order(self, connection: Connection, charge: dict) -> str:
        """The order a charge paid: its invoice's when it has one, else its payment intent's. A charge of the
        API versions since 2025-03 does not name its invoice: when no order has its payment intent, Stripe's
        invoice payments tell which invoice it paid."""
        ref = order_ref_of("charge.refunded", charge)
        intent = _id(charge.get("payment_intent"))
        if _id(charge.get("invoice")) or not intent or _order_amount(connection, ref) is not None:
            return ref
        if not (connection.credentials or {}).get("api_key"):
            return ref
        payment = {"type": "payment_intent", "payment_intent": intent}
        answer = self._get(connection, "/v1/invoice_payments", {"payment": payment, "limit": 1})
        paid = (answer.get("data") or [{}])[0] if answer.get("data") else {}
        return f"stripe:{_id(paid.get('invoice'))}" if _id(paid.get("invoice")) else ref

    def _refunds_of(self, connection: Connection, charge: dict) -> list[dict]:
        """The charge's refunds: in the event (API versions before 2022-11) or asked of Stripe."""
        listed = charge.get("refunds")
        if isinstance(listed, dict) and isinstance(listed.get("data"), list) and not listed.get("has_more"):
            return listed["data"]
        if (connection.credentials or {}).get("api_key"):
            found, after = [], None
            for _page in range(20):
                params = {"charge": charge["id"], "limit": 100, **({"starting_after": after} if after else {})}
                answer = self._get(connection, "/v1/refunds", params)
                found += answer.get("data") or []
                if not answer.get("has_more") or not found:
                    return found
                after = found[-1]["id"]
            return found
        raise BadPayload(
            "The event does not list the charge's refunds: give the connection a restricted key that can read "
            "refunds (or an endpoint of an API version before 2022-11-15)."
        )

    def _session_of(self, connection: Connection, subscription: str) -> dict | None:
        if not subscription or not (connection.credentials or {}).get("api_key"):
            return None
        answer = self._get(connection, "/v1/checkout/sessions", {"subscription": subscription, "limit": 1})
        return (answer.get("data") or [None])[0]

    def _promotion_codes(self, connection: Connection, discounts: object) -> list[str]:
        """The codes typed at checkout. A session names its promotion codes by id (promo_...): their code is asked
        of Stripe (only when the order has no click id or code of ours: it decides nothing otherwise)."""
        codes = []
        for discount in discounts if isinstance(discounts, list) else []:
            promotion = discount.get("promotion_code") if isinstance(discount, dict) else None
            if isinstance(promotion, dict) and promotion.get("code"):
                codes.append(str(promotion["code"]))
            elif promotion and (connection.credentials or {}).get("api_key"):
                codes.append(str(self._get(connection, f"/v1/promotion_codes/{promotion}", {}).get("code") or ""))
        return [code for code in codes if code]

    # outbound ---------------------------------------------------------------------------------------------------

    def credentials_from(self, token: str) -> dict:
        return {"api_key": token} if token else {}

    def base_url(self, connection: Connection) -> str:
        return super().base_url(connection).rstrip("/")  # the package appends "/v1/..."

    def client(self, connection: Connection) -> stripe.StripeClient:
        key = (connection.credentials or {}).get("api_key")
        if not key:
            raise PlatformError("This Stripe connection has no API key (a restricted key, rk_...).")
        return stripe.StripeClient(
            key,
            stripe_version=API_VERSION,
            base_addresses={"api": self.base_url(connection)},
            # Our own retries (the event's, the reward's) try again later; Stripe's would hold a worker here.
            max_network_retries=0,
            http_client=_http_client(),
        )

    def _get(self, connection: Connection, path: str, params: dict) -> dict:
        """A GET as raw JSON (what Stripe sent, not the package's objects)."""
        client = self.client(connection)
        try:
            response = client.raw_request("get", path, **params)
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        except httpx.HTTPError as exc:  # pragma: no cover - the package wraps these as APIConnectionError
            raise PlatformError(f"Stripe: {exc}", transient=True) from exc
        try:
            answer = json.loads(response.body)
        except ValueError as exc:
            raise PlatformError("Stripe answered something that is not JSON.") from exc
        return answer if isinstance(answer, dict) else {}

    def check(self, *, connection: Connection) -> str:
        answer = self._get(connection, "/v1/events", {"limit": 1})
        mode = "live" if connection.livemode else "test"
        return f"Stripe {connection.account} ({mode} mode): the key reads events ({len(answer.get('data') or [])})"

    def create_coupon(self, *, connection: Connection, coupon: Coupon) -> str:
        """A coupon (one redemption, our id `rs-<code>`) and its customer-facing promotion code (one redemption).
        Both are safe to create again: an attempt whose answer was lost left a coupon with our id (reused) and
        maybe the promotion code (found by its code and coupon); a code someone else took gets a suffix."""
        client = self.client(connection)
        coupon_id = f"rs-{coupon.code}"[:200]
        params: dict = {
            "id": coupon_id,
            "name": (coupon.title or coupon.code)[:40],
            "duration": "once",
            "max_redemptions": 1,
            "metadata": {"referral_saas": coupon.title[:500]},
        }
        if coupon.kind == "percent":
            params["percent_off"] = float(coupon.value)
        else:
            params.update(amount_off=to_minor(coupon.value, coupon.currency), currency=coupon.currency.lower())
        if coupon.ends_at:
            params["redeem_by"] = int(coupon.ends_at.timestamp())
        try:
            try:
                client.v1.coupons.create(params)  # type: ignore[arg-type]
            except stripe.InvalidRequestError as exc:
                if exc.code != "resource_already_exists":
                    raise
            for attempt in range(1, 6):
                code = coupon.code if attempt == 1 else f"{coupon.code}-{attempt}"
                try:
                    client.v1.promotion_codes.create({
                        "promotion": {"type": "coupon", "coupon": coupon_id},
                        "code": code,
                        "max_redemptions": 1,
                        "metadata": {"referral_saas": coupon.title[:500]},
                        **({"expires_at": params["redeem_by"]} if coupon.ends_at else {}),
                    })  # fmt: skip
                    return code
                except stripe.InvalidRequestError as exc:
                    if "code" not in (exc.param or "") and "already exists" not in str(exc).lower():
                        raise
                if self._promotion_code_ours(client, code, coupon_id):
                    return code
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        raise PlatformError(f"Stripe: the promotion codes {coupon.code}, -2 ... -5 are all taken.")

    @staticmethod
    def _promotion_code_ours(client: stripe.StripeClient, code: str, coupon_id: str) -> bool:
        found = client.v1.promotion_codes.list({"code": code, "limit": 10})
        return any(_id((p.get("promotion") or {}).get("coupon")) == coupon_id for p in found.data)

    def install_webhooks(self, *, connection: Connection) -> list[str]:
        """Our endpoint on the account (when the key may write webhook endpoints): created at the pinned API version
        for the events we use, and its signing secret, which Stripe gives only now, becomes the connection's. An
        endpoint of ours already there is kept with the secret we have."""
        client = self.client(connection)
        try:
            if any(e.url == connection.webhook_url for e in self._endpoints(client)):
                return []
            created = client.v1.webhook_endpoints.create({
                "url": connection.webhook_url,
                "enabled_events": list(TOPICS),
                "api_version": API_VERSION,
                "description": "Referral SaaS: orders and refunds",
            })  # type: ignore[arg-type]  # fmt: skip
        except stripe.StripeError as exc:
            raise _error(exc) from exc
        # The platform hands the secret over once: stored at once (encrypted), no previous one to honour.
        Connection.objects.for_merchant(connection.merchant_id).filter(pk=connection.pk).update(
            webhook_secret=created.secret
        )
        connection.webhook_secret = created.secret
        return list(TOPICS)

    def remove_webhooks(self, *, connection: Connection) -> None:
        client = self.client(connection)
        try:
            for endpoint in self._endpoints(client):
                if endpoint.url == connection.webhook_url:
                    client.v1.webhook_endpoints.delete(endpoint.id)
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    @staticmethod
    def _endpoints(client: stripe.StripeClient) -> list:
        return list(client.v1.webhook_endpoints.list({"limit": 100}).data)

    def reconcile(self, *, connection: Connection, since: datetime) -> Iterable[Fetched]:
        """The events of the topics we use since `since`, from events.list (Stripe keeps 30 days of them): the very
        events the webhooks send, with the same ids, so one already received is not stored again."""
        params: dict = {"created": {"gte": int(since.timestamp())}, "types": list(TOPICS), "limit": 100}
        for _page in range(100):  # at most 10,000 events a run; the next run goes on from there
            answer = self._get(connection, "/v1/events", params)
            events = answer.get("data") or []
            for event in events:
                if isinstance(event, dict) and str(event.get("id", "")).startswith("evt_"):
                    obj = (event.get("data") or {}).get("object") or {}
                    body = json.dumps(event, separators=(",", ":")).encode()
                    yield Fetched(event["id"], str(event.get("type")), body, order_ref_of(str(event["type"]), obj))
            if not answer.get("has_more") or not events:
                return
            params["starting_after"] = events[-1]["id"]


@functools.cache
def _http_client() -> stripe.HTTPXClient:
    """One httpx pool per process (made lazily, after a worker forks) for every Stripe call: kept-alive connections,
    our timeouts instead of the package's 80 s."""
    return stripe.HTTPXClient(timeout=TIMEOUT, allow_sync_methods=True)


def _order_amount(connection: Connection, order_ref: str) -> Decimal | None:
    """The amount of an order we have (the base of a refund's share), or None."""
    return (
        conversion_list(merchant=connection.merchant, livemode=connection.livemode)
        .filter(order_id=order_ref)
        .values_list("amount", flat=True)
        .first()
    )
