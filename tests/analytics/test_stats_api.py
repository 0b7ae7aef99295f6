"""GET /api/v1/stats: the rollups of one program by day, validated, in the key's mode, never another merchant's."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from analytics.models import DailyStats
from tests.factories import ProgramFactory, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def stats(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant, slug="friends", currency="PLN")
    rows = DailyStats.objects.for_merchant(merchant)
    rows.create(program=program, day=datetime.date(2026, 11, 1), clicks=800, signups=30, attributed_orders=12,
                referred_new_customers=10, referred_revenue=Decimal("1558.80"), cost_issued=Decimal("150.00"),
                cost_pending=Decimal("50.00"), cost_rejected=Decimal("99.00"))  # fmt: skip
    variant = program.variants.create(merchant=merchant, name="B")
    rows.create(program=program, variant=variant, day=datetime.date(2026, 11, 1), clicks=10, attributed_orders=1,
                referred_revenue=Decimal("0.10"))  # fmt: skip
    rows.create(program=program, day=datetime.date(2026, 11, 3), clicks=720, attributed_orders=11,
                referred_revenue=Decimal("1428.90"), cost_redeemed=Decimal("180.00"))  # fmt: skip
    rows.create(program=program, day=datetime.date(2026, 11, 3), livemode=False, clicks=5)
    return program


def test_totals_and_every_day_of_the_range(api_client, stats):
    response = api_client.get("/api/v1/stats", {"program": "friends", "from": "2026-11-01", "to": "2026-11-03"})
    assert response.status_code == 200
    body = response.json()
    assert (body["program"], body["from"], body["to"], body["currency"]) == (
        "friends",
        "2026-11-01",
        "2026-11-03",
        "PLN",
    )
    assert [d["date"] for d in body["days"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    first, empty, third = body["days"]
    assert (first["clicks"], first["conversions"], first["revenue"], first["rewards_cost"]) == (
        810,
        13,
        "1558.90",
        "200.00",
    )
    assert (empty["clicks"], empty["revenue"], empty["signups"]) == (0, "0.00", 0)
    assert third["rewards_cost"] == "180.00"
    totals = body["totals"]
    assert (totals["clicks"], totals["conversions"], totals["signups"]) == (1530, 24, 30)
    assert totals["revenue"] == "2987.80"  # to the cent
    assert totals["rewards_cost"] == "380.00"  # rejected rewards cost nothing
    assert totals["conversion_rate"] == pytest.approx(24 / 1530)


def test_a_test_key_reads_test_mode_numbers(tenant, stats):
    from rest_framework.test import APIClient

    _key, raw = make_api_key(tenant.merchant, mode="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = client.get("/api/v1/stats", {"program": "friends", "from": "2026-11-01", "to": "2026-11-03"}).json()
    assert body["totals"]["clicks"] == 5


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"from": "2026-11-01", "to": "2026-11-03"}, 400, "validation_error", "program"),
        ({"program": "friends", "from": "2026-13-01", "to": "2026-11-03"}, 400, "validation_error", "from"),
        ({"program": "friends", "from": "01/11/2026"}, 400, "validation_error", "from"),
        ({"program": "friends", "from": "2026-11-05", "to": "2026-11-03"}, 400, "validation_error", "from"),
        ({"program": "friends", "from": "2024-01-01", "to": "2026-11-03"}, 400, "range_too_long", "to"),
        ({"program": "no-such-program", "from": "2026-11-01", "to": "2026-11-03"}, 404, "not_found", None),
        ({"program": "bad slug!", "from": "2026-11-01"}, 400, "validation_error", "program"),
        ({"program": "friends", "to": "0001-01-05"}, 400, "validation_error", "to"),
        ({"program": "friends", "from": "9999-12-31"}, 400, "validation_error", "from"),
    ],
)
def test_bad_requests_are_json_errors_not_500(api_client, stats, params, status, code, field):
    response = api_client.get("/api/v1/stats", params)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    if field:
        assert field in error["fields"]


def test_defaults_to_the_last_30_days(api_client, stats):
    body = api_client.get("/api/v1/stats", {"program": "friends"}).json()
    assert len(body["days"]) == 30


def test_another_merchants_program_is_a_404(other_tenant, stats):
    response = other_tenant.api.get("/api/v1/stats", {"program": "friends", "from": "2026-11-01", "to": "2026-11-03"})
    assert response.status_code == 404
    assert "1558" not in response.content.decode()


def test_without_a_key_it_is_401(client, stats):
    assert client.get("/api/v1/stats?program=friends").status_code == 401


def test_amounts_have_the_currencys_decimals(tenant, api_client):
    program = ProgramFactory(merchant=tenant.merchant, slug="yen", currency="JPY")
    DailyStats.objects.for_merchant(tenant.merchant).create(
        program=program, day=datetime.date(2026, 11, 1), attributed_orders=1, referred_revenue=Decimal("1500"),
        cost_issued=Decimal("300"),
    )  # fmt: skip

    body = api_client.get("/api/v1/stats", {"program": "yen", "from": "2026-11-01", "to": "2026-11-02"}).json()

    assert (body["totals"]["revenue"], body["totals"]["rewards_cost"], body["totals"]["refunds"]) == (
        "1500",
        "300",
        "0",
    )
    assert [(d["revenue"], d["rewards_cost"]) for d in body["days"]] == [("1500", "300"), ("0", "0")]
