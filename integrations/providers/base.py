"""What every shop platform does for us, one small class each (providers/<name>.py), found through the registry
(providers/__init__.py). A provider only translates: it verifies and reads what the platform sends, and calls the
platform; what an order or a refund does to referrals and rewards is decided by the services of the apps below,
applied in integrations/services/processing.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from integrations.http import PlatformClient
from integrations.models import Connection
from referral_saas.crypto import same_secret


class BadPayload(ValueError):
    """What the platform sent cannot be read (not JSON, fields missing): the event fails and can be replayed."""


# --- what an event means ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """Read from a request before it is stored: the platform's id of this event and its topic."""

    event_id: str
    topic: str
    order_ref: str = ""


@dataclass
class Order:
    """A paid order, as conversion_record takes it. order_id is "<provider>:<platform id>"."""

    order_id: str
    amount: Decimal
    currency: str
    customer_external_id: str | None = None
    customer_email: str | None = None
    click_id: str | None = None
    code: str | None = None
    discount_codes: list[str] = field(default_factory=list)
    occurred_at: datetime | None = None
    ip: str | None = None
    user_agent: str = ""
    ga_client_id: str = ""  # the buyer's Google Analytics client id, where the platform carries it (GA4 events)


@dataclass
class Refund:
    """Money given back on an order. amount None: all that remains (a cancelled order)."""

    order_id: str
    refund_id: str
    amount: Decimal | None
    reason: str = ""


@dataclass
class CustomerRequest:
    """A privacy request about one customer (Shopify's customers/data_request and customers/redact)."""

    kind: str  # "export" | "erase"
    external_id: str | None
    email: str | None
    request_id: str = ""
    # Orders ("<provider>:<id>") whose stored events are redacted with the customer (Shopify's orders_to_redact).
    order_refs: list[str] = field(default_factory=list)


@dataclass
class Disconnect:
    """The shop removed us (app/uninstalled, shop/redact): stop syncing, keep the history."""

    reason: str


@dataclass
class Ignore:
    """Nothing for us in this event (an unpaid order, a topic we do not use), with why."""

    reason: str


Action = Order | Refund | CustomerRequest | Disconnect | Ignore


@dataclass
class Coupon:
    """A reward's coupon to create on the platform before it is issued."""

    code: str
    kind: str  # "percent" | "amount"
    value: Decimal
    currency: str
    customer_email: str | None = None
    ends_at: datetime | None = None
    title: str = ""


@dataclass
class Fetched:
    """An order or refund reconciliation found: stored as an InboundEvent like a webhook's."""

    event_id: str
    topic: str
    body: bytes
    order_ref: str = ""


# --- the provider -------------------------------------------------------------------------------------------------


class Provider:
    name: str = ""
    default_base_url: str = ""
    # Whether connecting with an API token needs no pasted webhook secret: we choose it (WooCommerce) or the
    # platform gives it when install_webhooks creates the endpoint (Stripe).
    makes_own_secret: bool = False
    # A marketing tool (providers/marketing.py): we only send to it; `secret` is its API key.
    marketing: bool = False

    # inbound ----------------------------------------------------------------------------------------------------

    def signature_ok(self, *, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether the request is signed with `secret` (constant time)."""
        raise NotImplementedError

    def verify(self, *, connection: Connection, body: bytes, headers: Mapping[str, str]) -> bool:
        return any(
            self.signature_ok(secret=secret, body=body, headers=headers) for secret in connection.secrets_accepted()
        )

    def unsigned_ping(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        """A platform's unsigned check that the URL answers (WooCommerce's `webhook_id=N`): 200, nothing stored."""
        return False

    def inbound(self, *, body: bytes, headers: Mapping[str, str]) -> Inbound:
        """The event's id and topic, from a verified request (raises BadPayload)."""
        raise NotImplementedError

    def interpret(self, *, connection: Connection, topic: str, payload: dict) -> list[Action]:
        """What the event means for us: orders, refunds, privacy requests, a disconnection, or nothing."""
        raise NotImplementedError

    # outbound ---------------------------------------------------------------------------------------------------

    def credentials_from(self, token: str) -> dict:
        """The stored credentials for the token a merchant pasted (or `createconnection --token`)."""
        return {"access_token": token} if token else {}

    def client(self, connection: Connection) -> PlatformClient:
        raise NotImplementedError

    def base_url(self, connection: Connection) -> str:
        return connection.base_url or self.default_base_url.format(account=connection.account)

    def check(self, *, connection: Connection) -> str:
        """Call the platform with the stored credentials; a sentence naming what answered (raises PlatformError)."""
        raise NotImplementedError

    def create_coupon(self, *, connection: Connection, coupon: Coupon) -> str:
        """Create the coupon on the platform; returns the code as created (raises PlatformError)."""
        raise NotImplementedError

    def reconcile(self, *, connection: Connection, since: datetime) -> Iterable[Fetched]:
        """Orders and refunds changed since `since`, as events (their ids match the webhooks' where possible)."""
        return ()

    def install_webhooks(self, *, connection: Connection) -> list[str]:
        """Register our endpoint on the platform where it can be done by API; returns what was registered."""
        return []

    def remove_webhooks(self, *, connection: Connection) -> None:
        """Delete what install_webhooks registered (disconnecting)."""


def load_json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload("The body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise BadPayload("The body is not a JSON object.")
    return payload


def hmac_equal(expected: str | bytes, given: object) -> bool:
    return same_secret(expected, given)
