"""What every marketing tool does for us (Klaviyo, Mailchimp, HubSpot, Salesforce, GA4, Zapier): it only receives.
A tool says which of our domain events it wants (`wants`), creates its fields once (`setup`), and sends profiles,
events and erasures; the sync log, batching, retries and consent are integrations/services/marketing.py's.

Our domain events are the webhook events (their `data` as the shop API shows it) plus participant.erased.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from integrations.models import Connection, OutboundSync
from integrations.providers.base import Provider
from integrations.selectors import Profile
from referral_saas.webhooks.services import CONSENT_GIVEN, PARTICIPANT_ERASED

# The events after which a participant's standing changed: their profile is sent again.
PROFILE_EVENTS = (
    "participant.created",
    CONSENT_GIVEN,
    "referral.created",
    "conversion.attributed",
    "reward.approved",
    "reward.issued",
    "reward.voided",
    "reward.clawed_back",
)
# The events a tool that takes events (Klaviyo) receives, under these names.
EVENT_NAMES = {
    "participant.created": "Referral Joined",
    "referral.created": "Friend Referred",
    "reward.approved": "Reward Earned",
    "reward.issued": "Reward Issued",
}


def subject_of(event_type: str, data: dict) -> int | None:
    """The participant an event is about (whose profile changes): the one who joined, the referrer of a referral or
    an order, the participant of a reward."""
    if event_type in ("participant.created", CONSENT_GIVEN, PARTICIPANT_ERASED):
        return data.get("id")
    if event_type == "referral.created":
        return (data.get("referrer") or {}).get("id")
    if event_type == "conversion.attributed":
        return ((data.get("referral") or {}).get("referrer") or {}).get("id")
    if event_type.startswith("reward."):
        return (data.get("participant") or {}).get("id")
    return None


def key_of(event_type: str, data: dict) -> str:
    return f"{event_type}:{data.get('key') or data.get('id', '')}"


def decimal_or_none(value) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


@dataclass
class MarketingEvent:
    """One of our events as a tool's event: its name, our key as its unique id (a retry is no second event)."""

    name: str
    unique_id: str
    time: str | None
    value: Decimal | None = None
    currency: str = ""
    properties: dict = field(default_factory=dict)

    @classmethod
    def of(cls, item: OutboundSync) -> MarketingEvent:
        data, event_type = item.payload or {}, item.event_type
        properties = {"program": data.get("program")}
        value, currency, time = None, "", data.get("created_at")
        if event_type.startswith("reward."):
            unit = data.get("unit")
            value = decimal_or_none(data.get("value")) if unit == "money" else None
            currency = data.get("currency") or "" if unit == "money" else ""
            properties.update(
                reward_id=data.get("id"),
                reward_kind=data.get("kind"),
                reward_value=data.get("value"),
                reward_unit=unit,
                currency=data.get("currency"),
                coupon_code=data.get("coupon_code") or "",
                expires_at=data.get("expires_at"),
                description=data.get("description") or "",
            )
            time = data.get("issued_at") if event_type == "reward.issued" else time
        elif event_type == "referral.created":
            properties.update(referral_id=data.get("id"), code=data.get("code"), status=data.get("status"))
        elif event_type == "participant.created":
            properties.update(code=data.get("code"), link=data.get("link"))
        return cls(
            name=EVENT_NAMES[event_type],
            unique_id=item.key,
            time=time,
            value=value,
            currency=currency,
            properties=properties,
        )


@dataclass
class Sent:
    """What a batch call did: what was called (no personal data) and the participants the tool refused in it
    (participant id -> why). The others were done."""

    summary: str
    refused: dict[int, str] = field(default_factory=dict)


class NotSendable(Exception):
    """This row cannot be sent to this tool (GA4: no client id): it is not sent, with why."""


class MarketingTool(Provider):
    marketing = True
    # Whether the tool takes events (a timeline: Klaviyo) besides profiles.
    sends_events = False
    # Profiles per call (a batch upsert API takes many).
    batch_size = 1
    # Events per call when several are due (0: one call each; a tool with a bulk events API sets its limit).
    bulk_events = 0
    # Whether it gets participants' personal data (GA4 and Zapier do not: no consent needed, nothing to erase).
    personal = True

    def wants(self, event_type: str) -> list[str]:
        """The kinds of sync an event of ours makes for this tool."""
        if event_type == PARTICIPANT_ERASED:
            return [OutboundSync.Kind.ERASE] if self.personal else []
        kinds = []
        if event_type in PROFILE_EVENTS:
            kinds.append(OutboundSync.Kind.PROFILE)
        if self.sends_events and event_type in EVENT_NAMES:
            kinds.append(OutboundSync.Kind.EVENT)
        return kinds

    def api_key(self, connection: Connection) -> str:
        return (connection.credentials or {}).get("api_key", "")

    def setup(self, *, connection: Connection) -> None:
        """Create our fields on the tool (once per connection: connection.setup_done_at)."""

    def upsert_profiles(self, *, connection: Connection, profiles: list[Profile]) -> str | Sent:
        """Create or update these participants there; returns what was called (no personal data), as `Sent` when
        the tool refused some of them and took the others."""
        raise NotImplementedError

    def send_event(self, *, connection: Connection, item: OutboundSync, profile: Profile | None) -> str:
        """Send one of our events (item.event_type, item.payload); raises PlatformError, or NotSendable."""
        raise NotImplementedError

    def send_events(self, *, connection: Connection, events: list[tuple[OutboundSync, Profile | None]]) -> str:
        """Send several of our events in one call (tools with `bulk_events`); raises PlatformError."""
        raise NotImplementedError

    def erase(self, *, connection: Connection, participant_id: int, email: str | None, external_id: str | None) -> str:
        """Delete (or anonymise) the person there; returns what was called, or raises PlatformError."""
        raise NotImplementedError

    # Nothing comes in from a marketing tool (the inbound endpoint answers 404 for them).
    def signature_ok(self, *, secret, body, headers) -> bool:
        return False
