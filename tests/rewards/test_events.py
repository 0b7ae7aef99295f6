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


def test_a_sign_up_rejected_as_fraud_is_created_with_its_real_status_and_the_apis_shape(tenant, referrer, endpoint):
    from fraud.models import BlocklistEntry
    from rewards.services import referral_process

    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    created = tenant.api.post(
        "/api/v1/referrals",
        {"code": referrer[1].code, "customer": {"external_id": "m-1", "email": "m@cheat.example"}},
        format="json",
    )
    assert referral_process(merchant=tenant.merchant, referral_id=created.json()["id"]) == "rejected"

    payload = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="referral.created").payload
    assert payload["status"] == "rejected"
    [listed] = tenant.api.get("/api/v1/referrals").json()["results"]
    assert payload == listed  # "the object as the API shows it"


def test_an_order_rejected_as_fraud_is_not_announced_as_attributed(tenant, program, referrer, endpoint):
    from fraud.models import BlocklistEntry

    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    conversion = order(tenant, referrer[1], friend="mule@cheat.example")
    assert conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"]) == "rejected"
    assert "conversion.attributed" not in _types(tenant)
    assert "fraud.flagged" in _types(tenant)


def test_yen_amounts_have_no_decimals_in_events_and_the_api(tenant, referrer, endpoint):
    from decimal import Decimal

    from tests.factories import ProgramFactory, join

    yen = ProgramFactory(merchant=tenant.merchant, slug="jp", currency="JPY")
    rule(yen, hold_days=0, value_type="fixed", value=Decimal("500"))
    _anna, code = join(yen, email="anna.jp@example.org")
    body = {"order_id": "jp-1", "amount": "1500", "currency": "JPY", "code": code.code,
            "customer": {"external_id": "f-1", "email": "f@example.org"}}  # fmt: skip
    created = tenant.api.post("/api/v1/conversions", body, format="json").json()
    assert (created["amount"], created["refunded_amount"]) == ("1500", "0")
    conversion_process(merchant=tenant.merchant, conversion_id=created["id"])
    rewards_release_due()

    attributed = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="conversion.attributed").payload
    assert attributed["amount"] == "1500"
    issued = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="reward.issued").payload
    assert issued["value"] == "500"
    refund = tenant.api.post("/api/v1/conversions/jp-1/refunds", {"amount": "100", "refund_id": "r"}, format="json")
    assert (refund.json()["amount"], refund.json()["order_refunded_amount"]) == ("100", "100")


def test_an_order_reinstated_by_a_reviewer_is_announced_as_attributed_then(tenant, program, referrer, endpoint):
    from fraud.models import BlocklistEntry, FraudAssessment
    from fraud.services import assessment_review

    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    conversion = order(tenant, referrer[1], friend="friend@cheat.example")
    assert conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"]) == "rejected"
    assert "conversion.attributed" not in _types(tenant)

    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assessment_review(assessment=assessment, approve=True, reason="Known customer", user=tenant.owner)
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])  # again: nothing new

    assert _types(tenant).count("conversion.attributed") == 1
    assert _types(tenant).count("referral.created") == 1
    attributed = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="conversion.attributed").payload
    assert attributed["status"] == "attributed"


def test_erasing_a_participant_removes_them_from_the_stored_events(tenant, program, endpoint):
    from programs.models import Participant
    from programs.services import participant_erase

    created = tenant.api.post(
        "/api/v1/participants",
        {"program": "friends", "external_id": "1001", "email": "Zofia@Example.org", "name": "Zofia Erased"},
        format="json",
    ).json()
    other = WebhookMessage.objects.for_merchant(tenant.merchant).create(
        msg_id="msg_other", type="conversion.attributed", livemode=True,
        payload={"order_id": "1001", "customer": {"external_id": "1001", "email": "zofia@example.org"}},
    )  # fmt: skip

    participant_erase(participant=Participant.objects.for_merchant(tenant.merchant).get(pk=created["id"]))

    payload = WebhookMessage.objects.for_merchant(tenant.merchant).get(type="participant.created").payload
    assert payload["id"] == created["id"]  # the event keeps its shape
    assert (payload["email"], payload["external_id"], payload["name"]) == (None, None, None)
    other.refresh_from_db()
    assert other.payload == {
        "order_id": "1001",
        "customer": {"external_id": None, "email": None},
    }  # the order's id stays
