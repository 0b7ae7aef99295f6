"""Mailchimp: participants as members of one audience (the connection's account is the audience id) with our merge
fields, created once; a member is PUT by the MD5 of the lower-cased email (Mailchimp's subscriber hash), so it is an
upsert. The API key ends with the data centre (`...-us21`), which is the host (`https://us21.api.mailchimp.com`);
HTTP basic auth with any user name and the key.

Profiles go in batches: one `POST /3.0/lists/{list}` (batch subscribe/update, `update_existing`, up to 500 members)
per batch. Mailchimp answers 200 and lists the members it refused in `errors` (e.g. one who unsubscribed there and is
in a compliance state, whom Mailchimp does not let an API re-subscribe); those rows fail, the others are done."""

from __future__ import annotations

import hashlib

from integrations.http import PlatformClient
from integrations.models import Connection
from integrations.providers.marketing import MarketingTool, Sent
from integrations.selectors import Profile

# tag -> (name, type): the merge fields we create once in the audience.
MERGE_FIELDS = {
    "REFLINK": ("Referral link", "url"),
    "REFCODE": ("Referral code", "text"),
    "REFCOUNT": ("Referrals", "number"),
    "REFSTATUS": ("Referral status", "text"),
    "NXTREWARD": ("Next referral reward", "text"),
}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id, not security


def merge_fields(profile: Profile) -> dict:
    return {
        "REFLINK": profile.link,
        "REFCODE": profile.code,
        "REFCOUNT": profile.referrals,
        "REFSTATUS": profile.status,
        "NXTREWARD": profile.next_reward_text,
    }


class Mailchimp(MarketingTool):
    name = "mailchimp"
    default_base_url = "https://{dc}.api.mailchimp.com"
    batch_size = 500  # members per batch subscribe/update call (Mailchimp's limit)

    def base_url(self, connection: Connection) -> str:
        key = self.api_key(connection)
        data_centre = key.rsplit("-", 1)[-1] if "-" in key else "us1"
        return connection.base_url or self.default_base_url.format(dc=data_centre)

    def client(self, connection: Connection) -> PlatformClient:
        key = self.api_key(connection)
        return PlatformClient(base_url=self.base_url(connection), headers={}, auth=("referral", key))

    def _list(self, connection: Connection) -> str:
        return f"/3.0/lists/{connection.account}"

    def check(self, *, connection: Connection) -> str:
        answer = self.client(connection).get(self._list(connection)) or {}
        return f"Mailchimp audience {answer.get('name', connection.account)}"

    def setup(self, *, connection: Connection) -> None:
        client = self.client(connection)
        answer = client.get(f"{self._list(connection)}/merge-fields", count="100") or {}
        existing = {row.get("tag") for row in answer.get("merge_fields", [])}
        for tag, (label, kind) in MERGE_FIELDS.items():
            if tag not in existing:
                client.post(f"{self._list(connection)}/merge-fields", {"tag": tag, "name": label, "type": kind})

    def upsert_profiles(self, *, connection: Connection, profiles: list[Profile]) -> Sent:
        members: dict[str, dict] = {}
        participants: dict[str, list[int]] = {}
        for profile in profiles:
            # Only participants who gave marketing consent are sent: "subscribed" is what they asked for.
            member = {"email_address": profile.email, "status": "subscribed", "merge_fields": merge_fields(profile)}
            if profile.language:
                member["language"] = profile.language
            # One member per address, should two participants share one: the last one wins, as a PUT would.
            email = profile.email.strip().lower()
            members.pop(email, None)
            members[email] = member
            participants.setdefault(email, []).append(profile.participant_id)
        body = {"members": list(members.values()), "update_existing": True}
        answer = self.client(connection).post(self._list(connection), body)
        refused = {}
        for error in (answer or {}).get("errors") or []:
            code = f" ({error['error_code']})" if error.get("error_code") else ""
            for participant_id in participants.get(str(error.get("email_address", "")).strip().lower(), []):
                refused[participant_id] = f"Mailchimp refused the member: {error.get('error', '')}{code}"
        return Sent(f"POST {self._list(connection)} x{len(members)}", refused)

    def erase(self, *, connection: Connection, participant_id: int, email: str | None, external_id: str | None) -> str:
        path = f"{self._list(connection)}/members/{subscriber_hash(email)}/actions/delete-permanent"
        self.client(connection).post(path, None)
        return f"POST {self._list(connection)}/members/<md5>/actions/delete-permanent"
