"""The shop API shows an order's fraud summary once it is scored, without a query per order."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fraud.services import conversion_assess

pytestmark = pytest.mark.django_db


def _order(tenant, code, order_id, email, **extra):
    body = {
        "order_id": order_id,
        "amount": "50.00",
        "currency": "PLN",
        "code": code.code,
        "customer": {"email": email},
        **extra,
    }
    return tenant.api.post("/api/v1/conversions", body, format="json")


def _assessment_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "fraud_fraudassessment" in q["sql"]]


def test_an_order_shows_its_fraud_summary_once_scored(tenant, referrer):
    code = referrer[1]
    created = _order(tenant, code, "A-1", "bob@mailinator.com")
    assert created.status_code == 201
    assert created.json()["fraud"] is None
    from tracking.models import Conversion

    conversion_assess(conversion=Conversion.objects.for_merchant(tenant.merchant).get(order_id="A-1"))

    body = tenant.api.get("/api/v1/conversions/A-1").json()

    assert body["fraud"]["score"] == 30
    assert body["fraud"]["decision"] == "review"
    assert body["fraud"]["signals"] == [
        {"name": "disposable_email", "weight": 30, "detail": body["fraud"]["signals"][0]["detail"]}
    ]
    assert "mailinator.com" in body["fraud"]["signals"][0]["detail"]
    repeated = _order(tenant, code, "A-1", "bob@mailinator.com")
    assert repeated.status_code == 200
    assert repeated.json()["fraud"]["decision"] == "review"


def test_reporting_a_new_order_does_not_look_for_an_assessment(tenant, referrer):
    with CaptureQueriesContext(connection) as queries:
        response = _order(tenant, referrer[1], "NEW-1", "carol@friends.example")

    assert response.status_code == 201
    assert response.json()["attributed"] is True
    assert _assessment_queries(queries) == []


def test_an_unattributed_order_is_never_scored_and_costs_no_lookup(tenant, program):
    body = {"order_id": "U-1", "amount": "50.00", "currency": "PLN", "customer": {"email": "x@y.example"}}
    tenant.api.post("/api/v1/conversions", body, format="json")

    with CaptureQueriesContext(connection) as queries:
        detail = tenant.api.get("/api/v1/conversions/U-1").json()

    assert detail["fraud"] is None
    assert _assessment_queries(queries) == []


def test_the_order_list_loads_fraud_summaries_in_one_query(tenant, referrer):
    from tracking.models import Conversion

    code = referrer[1]
    for n in range(6):
        _order(tenant, code, f"L-{n}", f"friend{n}@friends.example")
    for conversion in Conversion.objects.for_merchant(tenant.merchant).filter(order_id__in=["L-0", "L-1", "L-2"]):
        conversion_assess(conversion=conversion)

    with CaptureQueriesContext(connection) as queries:
        page = tenant.api.get("/api/v1/conversions").json()

    assert len(_assessment_queries(queries)) == 1
    by_order = {row["order_id"]: row["fraud"] for row in page["results"]}
    assert {k for k, v in by_order.items() if v is not None} == {"L-0", "L-1", "L-2"}
    assert by_order["L-0"] == {"score": 0, "decision": "approve", "signals": []}


def test_another_merchant_sees_neither_the_order_nor_its_assessment(tenant, other_tenant, referrer):
    from tracking.models import Conversion

    _order(tenant, referrer[1], "S-1", "bob@mailinator.com")
    conversion_assess(conversion=Conversion.objects.for_merchant(tenant.merchant).get(order_id="S-1"))

    assert other_tenant.api.get("/api/v1/conversions/S-1").status_code == 404
    assert other_tenant.api.get("/api/v1/conversions").json()["results"] == []


def test_the_schema_documents_the_fraud_summary(client):
    import json

    schema = json.loads(client.get("/api/schema/?format=json").content)
    summary = schema["components"]["schemas"]["FraudSummary"]
    assert set(summary["properties"]) == {"score", "decision", "signals"}
    fraud = schema["components"]["schemas"]["ConversionOutput"]["properties"]["fraud"]
    assert fraud["nullable"] is True
    assert fraud["allOf"] == [{"$ref": "#/components/schemas/FraudSummary"}]
