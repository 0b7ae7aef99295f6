"""HubSpot: participants as contacts with our contact properties (created once, group "contactinformation"), sent in
batches of up to 100 by POST /crm/v3/objects/contacts/batch/upsert with the email as the id property. A private
app's access token (Bearer). Erasure is HubSpot's GDPR delete."""

from __future__ import annotations

from integrations.http import PlatformClient, PlatformError
from integrations.models import Connection
from integrations.providers.marketing import MarketingTool
from integrations.selectors import Profile

# name -> (label, type, fieldType)
PROPERTIES = {
    "referral_code": ("Referral code", "string", "text"),
    "referral_link": ("Referral link", "string", "text"),
    "referral_portal_link": ("Referral portal link", "string", "text"),
    "referral_status": ("Referral status", "string", "text"),
    "referral_count": ("Referrals", "number", "number"),
    "referral_successful_count": ("Successful referrals", "number", "number"),
    "referral_rewards_earned": ("Referral rewards earned", "number", "number"),
    "referral_next_reward": ("Next referral reward", "string", "text"),
}


def contact_properties(profile: Profile) -> dict:
    properties = {
        "referral_code": profile.code,
        "referral_link": profile.link,
        "referral_portal_link": profile.portal_link,
        "referral_status": profile.status,
        "referral_count": str(profile.referrals),
        "referral_successful_count": str(profile.successful_referrals),
        "referral_rewards_earned": str(profile.rewards_earned),
        "referral_next_reward": profile.next_reward_text,
    }
    if profile.first_name:
        properties["firstname"] = profile.first_name
    if profile.last_name:
        properties["lastname"] = profile.last_name
    return properties


class HubSpot(MarketingTool):
    name = "hubspot"
    default_base_url = "https://api.hubapi.com"
    batch_size = 100

    def client(self, connection: Connection) -> PlatformClient:
        return PlatformClient(
            base_url=self.base_url(connection), headers={"Authorization": f"Bearer {self.api_key(connection)}"}
        )

    def check(self, *, connection: Connection) -> str:
        self.client(connection).get("/crm/v3/properties/contacts/email")
        return f"HubSpot portal {connection.account}"

    def setup(self, *, connection: Connection) -> None:
        client = self.client(connection)
        for name, (label, kind, field_type) in PROPERTIES.items():
            body = {"name": name, "label": label, "type": kind, "fieldType": field_type,
                    "groupName": "contactinformation"}  # fmt: skip
            try:
                client.post("/crm/v3/properties/contacts", body)
            except PlatformError as exc:
                if exc.status != 409:  # 409: the property exists (created by an earlier connection)
                    raise

    def upsert_profiles(self, *, connection: Connection, profiles: list[Profile]) -> str:
        inputs = [{"idProperty": "email", "id": p.email, "properties": contact_properties(p)} for p in profiles]
        self.client(connection).post("/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs})
        return f"POST /crm/v3/objects/contacts/batch/upsert ({len(inputs)} contacts)"

    def erase(self, *, connection: Connection, participant_id: int, email: str | None, external_id: str | None) -> str:
        self.client(connection).post("/crm/v3/objects/contacts/gdpr-delete", {"objectId": email, "idProperty": "email"})
        return "POST /crm/v3/objects/contacts/gdpr-delete"
