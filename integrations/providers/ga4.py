"""Google Analytics 4: our sign-ups and orders as server-side Measurement Protocol events (referral_signup,
referral_purchase with value and currency) for the visitor's GA client id, which referral.js reads from the shop's
`_ga` cookie and the shop sends with the sign-up or the order (`ga_client_id`). A referral_click comes from the
snippet itself: on the landing page it tells us the click id and the client id once (POST /t/ga,
integrations/services/ga4.py). The connection's account is the measurement id (G-...), its secret the Measurement
Protocol API secret (Admin -> Data streams -> Measurement Protocol API secrets). The admin's "validate" sends a
sample to /debug/mp/collect, which answers what GA4 thinks of it (the real endpoint answers 2xx to anything).

No personal data goes to GA4 (a client id the shop's own GA tag set, ids of ours, amounts): it is sent whatever the
participant's marketing consent, as the shop's GA tag already measures that visitor; nothing to erase there.
"""

from __future__ import annotations

from integrations.http import PlatformClient, PlatformError
from integrations.models import Connection, OutboundSync
from integrations.providers.marketing import MarketingTool, NotSendable, decimal_or_none
from integrations.selectors import Profile, ga_client_id_for

EVENT_NAMES = {"referral.created": "referral_signup", "conversion.attributed": "referral_purchase"}
# Not a domain event: queued by the snippet's beacon (integrations/services/ga4.py), with the client id it read.
CLICK_EVENT = "referral.click"
SAMPLE = {"client_id": "123456789.1700000000", "events": [{"name": "referral_purchase", "params": {
    "currency": "PLN", "value": 129.9, "transaction_id": "validate-1", "referral_code": "ANNA-7K3Q"}}]}  # fmt: skip


def event_params(event_type: str, data: dict) -> dict:
    if event_type == "conversion.attributed":
        referral = data.get("referral") or {}
        amount = decimal_or_none(data.get("amount"))
        return {
            "currency": data.get("currency"),
            # GA4 takes a JSON number: the Decimal becomes one only here, on the wire.
            "value": float(amount) if amount is not None else 0,
            "transaction_id": data.get("order_id"),
            "referral_code": referral.get("code"),
        }
    if event_type == CLICK_EVENT:
        return {"referral_code": data.get("code"), "program": data.get("program"), "click_id": data.get("click_id")}
    return {"referral_code": data.get("code"), "program": data.get("program")}


class GoogleAnalytics(MarketingTool):
    name = "ga4"
    default_base_url = "https://www.google-analytics.com"
    personal = False

    def wants(self, event_type: str) -> list[str]:
        return [OutboundSync.Kind.EVENT] if event_type in EVENT_NAMES else []

    def client(self, connection: Connection) -> PlatformClient:
        return PlatformClient(base_url=self.base_url(connection), headers={})

    def _query(self, connection: Connection) -> dict:
        return {"measurement_id": connection.account, "api_secret": self.api_key(connection)}

    def send_event(self, *, connection: Connection, item: OutboundSync, profile: Profile | None) -> str:
        data = item.payload or {}
        if item.event_type == CLICK_EVENT:
            client_id = data.get("ga_client_id", "")
        else:
            client_id = ga_client_id_for(
                merchant_id=item.merchant_id, event_type=item.event_type, object_id=data.get("id")
            )
        if not client_id:
            raise NotSendable("no Google Analytics client id was sent with it")
        name = "referral_click" if item.event_type == CLICK_EVENT else EVENT_NAMES[item.event_type]
        body = {"client_id": client_id, "events": [{"name": name, "params": event_params(item.event_type, data)}]}
        self.client(connection).request("POST", "/mp/collect", json=body, params=self._query(connection))
        return f"POST /mp/collect ({name})"

    def validate(self, *, connection: Connection) -> list[dict]:
        """What GA4's debug endpoint says of a sample referral_purchase: [] when it accepts it."""
        answer = self.client(connection).request(
            "POST", "/debug/mp/collect", json=SAMPLE, params=self._query(connection)
        )
        return list((answer or {}).get("validationMessages") or [])

    def check(self, *, connection: Connection) -> str:
        messages = self.validate(connection=connection)
        if messages:
            raise PlatformError(
                "GA4 refused the sample event: " + "; ".join(m.get("description", "") for m in messages)
            )
        return f"GA4 {connection.account} accepted a sample referral_purchase event"
