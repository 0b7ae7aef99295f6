"""Klaviyo: participants as profiles with referral properties (POST /api/profile-import, an upsert by email), our
events on their timeline (POST /api/events), erasure as a data-privacy deletion job. JSON:API bodies; every call
names the API revision it was written for (the `revision` header), so Klaviyo keeps answering in that shape.

Several profiles go as one bulk import job (POST /api/profile-bulk-import-jobs, up to 10,000 profiles); a single one
keeps the synchronous profile-import. Klaviyo runs the job later: its per-profile errors are in the job's
import-errors in Klaviyo, not in our sync log. Several events go as one bulk create job (POST
/api/event-bulk-create-jobs, up to 1,000); a single one is POST /api/events."""

from __future__ import annotations

from integrations.http import PlatformClient
from integrations.models import Connection, OutboundSync
from integrations.providers.marketing import MarketingEvent, MarketingTool
from integrations.selectors import Profile

REVISION = "2025-01-15"
JSON_API = "application/vnd.api+json"


def profile_properties(profile: Profile) -> dict:
    """The custom properties we keep on a Klaviyo profile (README: "Marketing tools")."""
    return {
        "referral_program": profile.program,
        "referral_code": profile.code,
        "referral_link": profile.link,
        "referral_portal_link": profile.portal_link,
        "referral_status": profile.status,
        "referrals": profile.referrals,
        "successful_referrals": profile.successful_referrals,
        "rewards_earned": profile.rewards_earned,
        "referrals_to_next_reward": profile.friends_to_next_reward,
        "next_reward": profile.next_reward,
    }


def _identity(profile: Profile) -> dict:
    identity = {"email": profile.email}
    if profile.external_id:
        identity["external_id"] = profile.external_id
    return identity


def _profile_attributes(profile: Profile) -> dict:
    attributes = {**_identity(profile), "properties": profile_properties(profile)}
    if profile.first_name:
        attributes["first_name"] = profile.first_name
    if profile.last_name:
        attributes["last_name"] = profile.last_name
    return attributes


def _event_attributes(event: MarketingEvent) -> dict:
    attributes = {
        "properties": event.properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": event.name}}},
        "unique_id": event.unique_id,
    }
    if event.time:
        attributes["time"] = event.time
    if event.value is not None:
        # Klaviyo's value is a JSON number: the Decimal becomes one only here, on the wire.
        attributes["value"] = float(event.value)
        attributes["value_currency"] = event.currency
    return attributes


class Klaviyo(MarketingTool):
    name = "klaviyo"
    default_base_url = "https://a.klaviyo.com"
    sends_events = True
    batch_size = 10_000  # profiles per bulk import job (Klaviyo's limit)
    bulk_events = 1_000  # events per bulk create job (Klaviyo's limit)

    def client(self, connection: Connection) -> PlatformClient:
        return PlatformClient(
            base_url=self.base_url(connection),
            headers={
                "Authorization": f"Klaviyo-API-Key {self.api_key(connection)}",
                "revision": REVISION,
                "Accept": JSON_API,
                "Content-Type": JSON_API,
            },
        )

    def check(self, *, connection: Connection) -> str:
        answer = self.client(connection).get("/api/accounts")
        accounts = (answer or {}).get("data") or [{}]
        return f"Klaviyo account {accounts[0].get('id', connection.account)}"

    def upsert_profiles(self, *, connection: Connection, profiles: list[Profile]) -> str:
        client = self.client(connection)
        resources = [{"type": "profile", "attributes": _profile_attributes(profile)} for profile in profiles]
        if len(resources) == 1:
            client.post("/api/profile-import", {"data": resources[0]})
            return "POST /api/profile-import x1"
        body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": resources}}}}
        answer = client.post("/api/profile-bulk-import-jobs", body) or {}
        job = (answer.get("data") or {}).get("id", "?")
        return f"POST /api/profile-bulk-import-jobs x{len(resources)} (job {job})"

    def send_event(self, *, connection: Connection, item: OutboundSync, profile: Profile | None) -> str:
        event = MarketingEvent.of(item)
        attributes = {
            **_event_attributes(event),
            "profile": {"data": {"type": "profile", "attributes": _identity(profile)}},
        }
        self.client(connection).post("/api/events", {"data": {"type": "event", "attributes": attributes}})
        return f"POST /api/events ({event.name})"

    def send_events(self, *, connection: Connection, events: list[tuple[OutboundSync, Profile | None]]) -> str:
        """Several events as one bulk create job (up to 1,000, each with its profile). Klaviyo runs the job later:
        an event it refuses shows in Klaviyo's job, not in our sync log."""
        entries = [
            {
                "type": "event-bulk-create",
                "attributes": {
                    "profile": {"data": {"type": "profile", "attributes": _identity(profile)}},
                    "events": {"data": [{"type": "event", "attributes": _event_attributes(MarketingEvent.of(item))}]},
                },
            }
            for item, profile in events
        ]
        body = {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": entries}}}}
        self.client(connection).post("/api/event-bulk-create-jobs", body)
        return f"POST /api/event-bulk-create-jobs x{len(entries)}"

    def erase(self, *, connection: Connection, participant_id: int, email: str | None, external_id: str | None) -> str:
        body = {
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": email}}}},
            }
        }
        self.client(connection).post("/api/data-privacy-deletion-jobs", body)
        return "POST /api/data-privacy-deletion-jobs"
