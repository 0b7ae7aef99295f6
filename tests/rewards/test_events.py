"""The shop hears about the loop by webhook: every event type of the rewards and fraud side is emitted once."""

from __future__ import annotations

import pytest

from referral_saas.webhooks.models import WebhookMessage
from rewards.services import conversion_process, refund_apply, rewards_release_due
from tests.rewards.helpers import order, rule
from tracking.models import Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(tenant, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    response = tenant.api.post("/api/v1/webhook-endpoints", {"url": "https://hooks.example/in"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _types(tenant) -> list[str]:
    return list(WebhookMessage.objects.for_merchant(tenant.merchant).order_by("pk").values_list("type", flat=True))


def test_an_order_through_issue_and_refund_emits_each_event_once(tenant, program, referrer, endpoint):
    rule(program, hold_days=0)
    conversion = order(tenant, referrer[1])
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])  # delivered twice: no new events
    rewards_release_due()
    tenant.api.post("/api/v1/conversions/1001/refunds", {"amount": "129.90", "refund_id": "r-1"}, format="json")
    refund_apply(merchant=tenant.merchant, refund_id=Refund.objects.for_merchant(tenant.merchant).get().pk)
    assert _types(tenant) == [
        "referral.created",
        "conversion.attributed",
        "reward.approved",
        "reward.issued",
        "reward.voided",
    ]
    attributed = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="conversion.attributed").payload
    assert attributed["order_id"] == "1001"
    assert attributed["fraud"]["decision"] == "approve"
    assert attributed["rewards"][0]["value"] == "12.99"
    voided = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="reward.voided").payload
    assert voided["status"] == "voided"
    assert voided["coupon_code"]


def test_a_flagged_order_emits_fraud_flagged_and_pays_nothing(tenant, program, referrer, endpoint):
    from fraud.models import BlocklistEntry

    rule(program, hold_days=0)
    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    conversion = order(tenant, referrer[1], friend="mule@cheat.example")
    assert conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"]) == "rejected"
    assert "fraud.flagged" in _types(tenant)
    flagged = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="fraud.flagged").payload
    assert flagged["order_id"] == "1001"
    assert flagged["fraud"]["decision"] == "reject"
    assert not any(t.startswith("reward.") for t in _types(tenant))
