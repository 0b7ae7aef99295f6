"""50 concurrent POST /conversions for one order, from real threads on real PostgreSQL connections."""

from __future__ import annotations

from collections import Counter

import pytest
from rest_framework.test import APIClient

from tests.threads import run_together
from tracking.models import Conversion, Referral

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 50


def _storm(tenant, body, key_for) -> Counter:
    def post(i: int) -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
        return api.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY=key_for(i)).status_code

    statuses, errors = run_together(THREADS, post)
    assert errors == []
    return Counter(statuses)


@pytest.mark.parametrize("keys", ["same key", "different keys"])
def test_fifty_concurrent_posts_of_one_order_make_one_attributed_conversion(tenant, referrer, keys):
    _participant, code = referrer
    body = {
        "order_id": "race-1",
        "amount": "250.00",
        "currency": "PLN",
        "code": code.code,
        "customer": {"external_id": "friend-1", "email": "friend@x.example"},
    }
    key_for = (lambda i: "order-race-1") if keys == "same key" else (lambda i: f"attempt-{i}")
    statuses = _storm(tenant, body, key_for)

    assert sum(statuses.values()) == THREADS
    assert set(statuses) <= {200, 201, 409}  # created, replayed/existing, or "still in flight" for the same key
    assert statuses[201] >= 1
    assert Conversion.objects.for_merchant(tenant.merchant).filter(order_id="race-1").count() == 1
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id="race-1")
    assert conversion.status == Conversion.Status.ATTRIBUTED
    assert Referral.objects.for_merchant(tenant.merchant).count() == 1
    assert Referral.objects.for_merchant(tenant.merchant).get().status == Referral.Status.CONVERTED
    if keys == "different keys":
        assert statuses[201] == 1  # exactly one request created it; the others got it back with 200


def test_fifty_friends_posting_one_order_id_at_once_leave_one_order_and_one_referral(tenant, referrer):
    """Each request would open its own friend's referral with the order; the order id is one: the requests that lose
    it keep no referral either (the friend's first referral and the order are written together or not at all)."""
    _participant, code = referrer

    def post(i: int) -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
        body = {
            "order_id": "race-2",
            "amount": "99.00",
            "currency": "PLN",
            "code": code.code,
            "customer": {"external_id": f"friend-{i}", "email": f"friend{i}@x.example"},
        }
        return api.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY=f"friend-{i}").status_code

    statuses, errors = run_together(THREADS, post)
    assert errors == []
    assert Counter(statuses) == {201: 1, 200: THREADS - 1}
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id="race-2")
    referral = Referral.objects.for_merchant(tenant.merchant).get()  # one: the winner's
    assert conversion.referral_id == referral.pk
    assert conversion.customer_external_id == referral.referee_external_id


def test_fifty_orders_of_one_new_friend_at_once_share_one_referral(tenant, referrer):
    _participant, code = referrer

    def post(i: int) -> int:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
        body = {
            "order_id": f"race-3-{i}",
            "amount": "10.00",
            "currency": "PLN",
            "code": code.code,
            "customer": {"external_id": "friend-3", "email": "friend3@x.example"},
        }
        return api.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY=f"race-3-{i}").status_code

    statuses, errors = run_together(THREADS, post)
    assert errors == []
    assert Counter(statuses) == {201: THREADS}
    referral = Referral.objects.for_merchant(tenant.merchant).get()
    assert referral.status == Referral.Status.CONVERTED
    conversions = Conversion.objects.for_merchant(tenant.merchant).filter(order_id__startswith="race-3-")
    assert conversions.count() == THREADS
    assert set(conversions.values_list("referral_id", flat=True)) == {referral.pk}
