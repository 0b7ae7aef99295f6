"""POST /conversions and refunds: every kind of bad input is a clear 4xx and writes nothing; retries are safe."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, transaction

from referral_saas.idempotency import _lock_id
from referral_saas.tenancy.models import IdempotencyRecord
from tests.threads import join_all, run_together, start
from tracking.models import Conversion, Referral, Refund

pytestmark = pytest.mark.django_db

GOOD = {"order_id": "1001", "amount": "129.90", "currency": "PLN", "customer": {"external_id": "c-77"}}


def _nothing_written(tenant):
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 0
    assert Referral.objects.for_merchant(tenant.merchant).count() == 0
    assert IdempotencyRecord.objects.for_merchant(tenant.merchant).count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "1000000000.01"}, "amount"),
        ({"amount": "1e10"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": 129.9}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": ["1"]}, "amount"),
        ({"amount": ""}, "amount"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "pln1"}, "currency"),
        ({"currency": 985}, "currency"),
        ({"order_id": ""}, "order_id"),
        ({"order_id": "x" * 129}, "order_id"),
        ({"order_id": {"id": 1}}, "order_id"),
        ({"customer": "c-77"}, "customer"),
        ({"customer": {"email": "not-an-email"}}, "customer"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"ip": "999.1.1.1"}, "ip"),
    ],
)
def test_invalid_fields_are_400_with_a_message_for_the_field(tenant, change, field):
    response = tenant.api.post("/api/v1/conversions", {**GOOD, **change}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    _nothing_written(tenant)


@pytest.mark.parametrize("missing", ["order_id", "amount", "currency"])
def test_missing_fields_are_named(tenant, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    response = tenant.api.post("/api/v1/conversions", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"][missing] == ["This field is required."]
    _nothing_written(tenant)


def test_yen_amounts_have_no_decimals(tenant):
    response = tenant.api.post("/api/v1/conversions", {**GOOD, "currency": "JPY", "amount": "1500.50"}, format="json")
    assert response.status_code == 400
    assert "JPY" in response.json()["error"]["fields"]["amount"][0]
    assert (
        tenant.api.post("/api/v1/conversions", {**GOOD, "currency": "JPY", "amount": "1500"}, format="json").status_code
        == 201
    )


def test_malformed_json_is_400(tenant):
    response = tenant.api.post("/api/v1/conversions", '{"order_id": "1", ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    _nothing_written(tenant)


@pytest.mark.parametrize("body", ["[]", '"text"', "null", "42"])
def test_a_json_body_that_is_not_an_object_is_400(tenant, body):
    response = tenant.api.post("/api/v1/conversions", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("validation_error", "malformed_json")
    _nothing_written(tenant)


def test_non_json_content_type_is_415(tenant):
    response = tenant.api.post(
        "/api/v1/conversions", "order_id=1&amount=5", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    _nothing_written(tenant)


def test_a_body_over_64_kb_is_413(tenant):
    body = json.dumps({**GOOD, "user_agent": "x" * (65 * 1024)})
    response = tenant.api.post("/api/v1/conversions", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    _nothing_written(tenant)


def test_a_nan_literal_in_json_is_refused(tenant):
    body = '{"order_id": "1", "amount": NaN, "currency": "PLN"}'
    assert tenant.api.post("/api/v1/conversions", body, content_type="application/json").status_code == 400
    _nothing_written(tenant)


# --- idempotency -------------------------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_response(tenant):
    first = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="order-1001")
    second = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="order-1001")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 1


def test_same_idempotency_key_with_another_body_is_422(tenant):
    tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="order-1001")
    other = tenant.api.post(
        "/api/v1/conversions", {**GOOD, "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="order-1001"
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_rejected_request_does_not_burn_its_idempotency_key(tenant):
    bad = tenant.api.post("/api/v1/conversions", {**GOOD, "currency": "XYZ"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    fixed = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert fixed.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "bad key with spaces", "ключ"])
def test_a_malformed_idempotency_key_is_400(tenant, key):
    response = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    _nothing_written(tenant)


def test_idempotency_keys_of_two_merchants_do_not_meet(tenant, other_tenant):
    a = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="same")
    b = other_tenant.api.post(
        "/api/v1/conversions", {**GOOD, "amount": "5.00"}, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    assert (a.status_code, b.status_code) == (201, 201)
    assert b.json()["amount"] == "5.00"


@pytest.mark.django_db(transaction=True)
def test_the_same_key_while_the_first_request_runs_is_409(tenant):
    holding, release = threading.Event(), threading.Event()

    def hold_the_key():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(tenant.merchant.pk, True, "busy-key")])
            holding.set()
            release.wait(10)
        connection.close()

    threads = start(hold_the_key)
    try:
        assert holding.wait(10)
        response = tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="busy-key")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_in_use"
    finally:
        release.set()
        join_all(threads)
    assert (
        tenant.api.post("/api/v1/conversions", GOOD, format="json", HTTP_IDEMPOTENCY_KEY="busy-key").status_code == 201
    )


def test_rate_limit_is_429_with_retry_after(tenant, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    statuses = [tenant.api.get("/api/v1/conversions").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = tenant.api.get("/api/v1/conversions")
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 61


# --- refunds -----------------------------------------------------------------------------------------------------


def _refund(api, amount, refund_id="r-1", order_id="1001"):
    return api.post(
        f"/api/v1/conversions/{order_id}/refunds", {"amount": amount, "refund_id": refund_id}, format="json"
    )


def test_partial_then_full_refund_and_never_more_than_the_order(tenant):
    tenant.api.post("/api/v1/conversions", GOOD, format="json")
    first = _refund(tenant.api, "29.90")
    assert first.status_code == 201
    assert first.json()["order_refunded_amount"] == "29.90"
    too_much = _refund(tenant.api, "100.01", refund_id="r-2")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "refund_exceeds_order"
    rest = _refund(tenant.api, "100.00", refund_id="r-3")
    assert rest.json()["order_refunded_amount"] == "129.90"
    assert Refund.objects.for_merchant(tenant.merchant).count() == 2
    assert tenant.api.get("/api/v1/conversions/1001").json()["refunded_amount"] == "129.90"


def test_the_same_refund_twice_is_one_refund(tenant):
    tenant.api.post("/api/v1/conversions", GOOD, format="json")
    assert _refund(tenant.api, "10.00").status_code == 201
    again = _refund(tenant.api, "10.00")
    assert again.status_code == 200
    assert again.json()["order_refunded_amount"] == "10.00"
    different = _refund(tenant.api, "11.00")
    assert different.status_code == 422
    assert different.json()["error"]["code"] == "refund_id_reused"


def test_refund_of_an_unknown_order_is_404_and_bad_amounts_are_400(tenant):
    assert _refund(tenant.api, "1.00", order_id="nope").status_code == 404
    tenant.api.post("/api/v1/conversions", GOOD, format="json")
    for amount in ("0", "-1", "abc", "1.234"):
        assert _refund(tenant.api, amount).status_code == 400, amount
    missing_id = tenant.api.post("/api/v1/conversions/1001/refunds", {"amount": "1.00"}, format="json")
    assert missing_id.status_code == 400
    assert Refund.objects.for_merchant(tenant.merchant).count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_order(tenant):
    tenant.api.post("/api/v1/conversions", {**GOOD, "amount": "100.00"}, format="json")

    def refund(i):
        from rest_framework.test import APIClient

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
        return _refund(api, "30.00", refund_id=f"r-{i}").status_code

    results, errors = run_together(8, refund)
    assert errors == []
    assert sorted(results) == [201, 201, 201, 422, 422, 422, 422, 422]
    conversion = Conversion.objects.for_merchant(tenant.merchant).get()
    assert str(conversion.refunded_amount) == "90.00"


def test_malformed_json_with_an_idempotency_key_is_still_a_parse_error(tenant):
    response = tenant.api.post(
        "/api/v1/conversions", '{"order_id": ', content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    _nothing_written(tenant)
