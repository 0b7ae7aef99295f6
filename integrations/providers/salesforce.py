"""Salesforce: participants as Contacts, upserted by an external-id field (Contact.<field>/<our participant id>), with
`simple-salesforce`, which is kept up and covers the REST API's auth, URLs and error types. The connection's account
is the org's instance URL (https://example.my.salesforce.com) and the secret an access token (OAuth, "Bearer").

The org needs the custom fields (Setup -> Object Manager -> Contact): the external-id field (default
Referral_Participant_Id__c, Text, External ID, Unique; another name in the connection's settings as
"external_id_field") and those in CONTACT_FIELDS. Erasure deletes the Contact by the same external id.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce as SalesforceApi
from simple_salesforce.exceptions import SalesforceError

from integrations.http import PlatformError
from integrations.models import Connection
from integrations.providers.marketing import MarketingTool
from integrations.selectors import Profile

API_VERSION = "62.0"
EXTERNAL_ID_FIELD = "Referral_Participant_Id__c"
TIMEOUT = (5.0, 10.0)
CONTACT_FIELDS = (
    "Referral_Code__c",
    "Referral_Link__c",
    "Referral_Portal_Link__c",
    "Referral_Status__c",
    "Referrals__c",
    "Successful_Referrals__c",
    "Referral_Rewards_Earned__c",
    "Next_Referral_Reward__c",
)


class _Session(requests.Session):
    """simple-salesforce builds https://<instance>/... URLs; this session sends them to the connection's base URL
    when one is set (--base-url: a sandbox proxy, tests) and never waits without a timeout."""

    def __init__(self, instance: str, base_url: str):
        super().__init__()
        self._instance, self._base_url = f"https://{instance}", base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if self._base_url and url.startswith(self._instance):
            url = self._base_url + url[len(self._instance) :]
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def contact_fields(profile: Profile) -> dict:
    local = (profile.email or "").split("@", 1)[0]
    return {
        "Email": profile.email,
        "FirstName": profile.first_name or None,
        "LastName": profile.last_name or profile.first_name or local or "Participant",  # required by Salesforce
        "Referral_Code__c": profile.code,
        "Referral_Link__c": profile.link,
        "Referral_Portal_Link__c": profile.portal_link,
        "Referral_Status__c": profile.status,
        "Referrals__c": profile.referrals,
        "Successful_Referrals__c": profile.successful_referrals,
        "Referral_Rewards_Earned__c": profile.rewards_earned,
        "Next_Referral_Reward__c": profile.next_reward_text,
    }


def _error(exc: Exception) -> PlatformError:
    if isinstance(exc, SalesforceError):
        status = exc.status
        content = str(exc.content)[:300]
        # The org's daily API limit answers 403 REQUEST_LIMIT_EXCEEDED: it lifts, so it is tried again later.
        transient = status == 429 or status >= 500 or "REQUEST_LIMIT_EXCEEDED" in content
        return PlatformError(
            f"Salesforce {exc.resource_name}: HTTP {status}: {content}", status=status, transient=transient
        )
    return PlatformError(f"Salesforce: {type(exc).__name__}: {exc}", transient=True)


class Salesforce(MarketingTool):
    name = "salesforce"

    def api(self, connection: Connection) -> SalesforceApi:
        instance = urlsplit(connection.account if "//" in connection.account else f"https://{connection.account}")
        return SalesforceApi(
            instance_url=f"https://{instance.netloc}",
            session_id=self.api_key(connection),
            version=API_VERSION,
            session=_Session(instance.netloc, connection.base_url),
        )

    def _field(self, connection: Connection) -> str:
        return (connection.settings or {}).get("external_id_field") or EXTERNAL_ID_FIELD

    def check(self, *, connection: Connection) -> str:
        try:
            self.api(connection).Contact.describe()
        except (SalesforceError, requests.RequestException) as exc:
            raise _error(exc) from exc
        return f"Salesforce org {connection.account}"

    def upsert_profiles(self, *, connection: Connection, profiles: list[Profile]) -> str:
        contact, field = self.api(connection).Contact, self._field(connection)
        for profile in profiles:
            try:
                contact.upsert(f"{field}/{profile.participant_id}", contact_fields(profile))
            except (SalesforceError, requests.RequestException) as exc:
                raise _error(exc) from exc
        return f"PATCH sobjects/Contact/{field}/<participant id> x{len(profiles)}"

    def erase(self, *, connection: Connection, participant_id: int, email: str | None, external_id: str | None) -> str:
        field = self._field(connection)
        try:
            self.api(connection).Contact.delete(f"{field}/{participant_id}")
        except SalesforceError as exc:
            if exc.status != 404:  # already gone
                raise _error(exc) from exc
        except requests.RequestException as exc:
            raise _error(exc) from exc
        return f"DELETE sobjects/Contact/{field}/<participant id>"
