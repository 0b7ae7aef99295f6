"""Hostile input the API must answer with a JSON 4xx and no write: forged cursors, JSON nested past Python's limit,
unencodable characters quoted back in errors, bodies that are not JSON on endpoints that read no field, digits from
other scripts, and order ids with slashes (accepted, and reachable afterwards) or control characters (refused)."""

from __future__ import annotations

import base64
from decimal import Decimal
from urllib.parse import quote, urlencode

import pytest

from rewards.models import Kind, Reward
from tests.factories import ProgramFactory, join
from tests.rewards.helpers import rule
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant):
    from rewards.services import conversion_process, rewards_release_due

    program = ProgramFactory(merchant=tenant.merchant, slug="friends")
    _participant, code = join(program, email="anna@a.example", external_id="c-42")
    rule(program, hold_days=0)
    response = tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "A-1", "amount": "50.00", "currency": "PLN", "code": code.code,
         "customer": {"email": "buyer@a.example"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id="A-1")
    conversion_process(merchant=tenant.merchant, conversion_id=conversion.pk)
    rewards_release_due()
    return {"reward": Reward.objects.for_merchant(tenant.merchant).get(kind=Kind.AMOUNT_COUPON)}


def _error(response, *statuses) -> str:
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    return response.json()["error"]["code"]


def _cursor(position: str) -> str:
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


CURSOR_LISTS = ["/api/v1/rewards", "/api/v1/webhook-endpoints", "/api/v1/conversions"]


@pytest.mark.parametrize("path", CURSOR_LISTS)
@pytest.mark.parametrize("position", ["2020-01-01T00:00:00+20:00", "2020-01-01T00:00:00-16:00"])
def test_a_cursor_with_an_offset_postgresql_refuses_is_read_in_utc(tenant, world, path, position):
    response = tenant.api.get(path, {"cursor": _cursor(position)})  # was a DataError: a 500
    assert response.status_code == 200
    assert response.json()["results"] == []  # 2019/2020: before anything here


@pytest.mark.parametrize("path", CURSOR_LISTS)
@pytest.mark.parametrize("position", ["yesterday", "2020", "2020-01-01T00:00:00"])
def test_a_forged_cursor_is_a_404_like_any_bad_cursor(tenant, world, path, position):
    assert _error(tenant.api.get(path, {"cursor": _cursor(position)}), 404) == "not_found"


def test_a_real_cursor_still_pages(tenant, world):
    for n in range(3):
        tenant.api.post("/api/v1/conversions", {"order_id": f"p-{n}", "amount": "5", "currency": "PLN"}, format="json")
    first = tenant.api.get("/api/v1/conversions", {"limit": 2}).json()
    second = tenant.api.get(first["next"]).json()
    seen = [row["order_id"] for row in first["results"] + second["results"]]
    assert sorted(seen) == ["A-1", "p-0", "p-1", "p-2"]


@pytest.mark.parametrize(
    "path", ["/api/v1/conversions", "/api/v1/conversions/A-1/refunds", "/api/v1/webhook-endpoints",
             "/api/v1/participants", "/api/v1/participants/c-42/points/redeem"],
)  # fmt: skip
def test_json_nested_too_deeply_is_malformed_json(tenant, world, path):
    body = b"[" * 1100 + b"]" * 1100
    response = tenant.api.generic("POST", path, body, content_type="application/json")
    assert _error(response, 400) == "malformed_json"
    assert "nested too deeply" in response.json()["error"]["message"]


def test_an_unencodable_character_quoted_in_an_error_is_still_a_400(tenant, world):
    body = b'{"url": "https://example.com/hook", "events": ["\\ud800"]}'
    response = tenant.api.generic("POST", "/api/v1/webhook-endpoints", body, content_type="application/json")
    assert _error(response, 400) == "validation_error"
    assert "is not a valid choice" in response.content.decode()


@pytest.mark.parametrize(("content_type", "body", "status"), [("application/json", b"{not json", 400),
                                                              ("text/plain", b"hello", 415)])  # fmt: skip
def test_redeeming_with_a_body_that_is_not_json_redeems_nothing(tenant, world, content_type, body, status):
    reward = world["reward"]
    response = tenant.api.generic("POST", f"/api/v1/rewards/{reward.pk}/redeem", body, content_type=content_type)
    _error(response, status)
    reward.refresh_from_db()
    assert reward.status == Reward.Status.ISSUED
    ok = tenant.api.post(f"/api/v1/rewards/{reward.pk}/redeem")  # no body at all is fine
    assert ok.status_code == 200


@pytest.mark.parametrize("amount", ["\u0665\u0660", "\uff15\uff10", "1\u0660"])  # Arabic-Indic, full-width
def test_digits_of_other_scripts_are_not_amounts(tenant, world, amount):
    refund = tenant.api.post("/api/v1/conversions/A-1/refunds", {"amount": amount, "refund_id": "r-x"}, format="json")
    order = tenant.api.post("/api/v1/conversions", {"order_id": "B-1", "amount": amount, "currency": "PLN"},
                            format="json")  # fmt: skip
    assert _error(refund, 400) == _error(order, 400) == "validation_error"
    assert not Refund.objects.for_merchant(tenant.merchant).exists()
    assert not Conversion.objects.for_merchant(tenant.merchant).filter(order_id="B-1").exists()


def test_an_order_id_with_slashes_can_be_read_and_refunded(tenant, world):
    order = {"order_id": "FV/2026/11/1001", "amount": "100", "currency": "PLN"}
    created = tenant.api.post("/api/v1/conversions", order, format="json")
    assert created.status_code == 201

    for path in ("FV/2026/11/1001", quote("FV/2026/11/1001", safe="")):
        read = tenant.api.get(f"/api/v1/conversions/{path}")
        assert read.status_code == 200
        assert read.json()["order_id"] == "FV/2026/11/1001"
    refund = tenant.api.post("/api/v1/conversions/FV/2026/11/1001/refunds", {"amount": "40", "refund_id": "K/1"},
                             format="json")  # fmt: skip
    assert refund.status_code == 201, refund.content
    order = Conversion.objects.for_merchant(tenant.merchant).get(order_id="FV/2026/11/1001")
    assert order.refunded_amount == Decimal("40.00")


@pytest.mark.parametrize("order_id", ["A\t1", "A\n1", "A\x7f1", "A\x1b1"])
def test_an_order_id_with_control_characters_is_refused(tenant, world, order_id):
    response = tenant.api.post("/api/v1/conversions", {"order_id": order_id, "amount": "10", "currency": "PLN"},
                               format="json")  # fmt: skip
    assert _error(response, 400) == "validation_error"
    assert "control characters" in response.content.decode()
    refund = tenant.api.post("/api/v1/conversions/A-1/refunds", {"amount": "1", "refund_id": order_id}, format="json")
    assert _error(refund, 400) == "validation_error"
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 1


def test_a_content_length_in_other_digits_is_not_a_500(tenant, world):
    response = tenant.api.get("/api/v1/rewards", HTTP_CONTENT_LENGTH="²")
    assert response.status_code == 200


def test_port_0_is_not_a_webhook_url(tenant):
    response = tenant.api.post(
        "/api/v1/webhook-endpoints", {"url": "http://example.com:0/hook", "events": ["reward.issued"]}, format="json"
    )
    assert response.status_code in (400, 422)
    assert "Port 0" in response.content.decode()


def test_a_participant_external_id_with_slashes_is_addressable(tenant, world):
    created = tenant.api.post(
        "/api/v1/participants", {"program": "friends", "external_id": "shop/42", "email": "s@a.example"}, format="json"
    )
    assert created.status_code == 201, created.content

    for ref in ("shop/42", quote("shop/42", safe="")):
        assert tenant.api.get(f"/api/v1/participants/{ref}").json()["external_id"] == "shop/42"
        points = tenant.api.get(f"/api/v1/participants/{ref}/points")
        assert points.status_code == 200
        assert points.json()["balance"] == 0
    spend = tenant.api.post("/api/v1/participants/shop/42/points/redeem", {"item": "999999"}, format="json")
    assert _error(spend, 404) == "not_found"  # the item, not the route
    assert "item" in spend.json()["error"]["message"].lower()


@pytest.mark.parametrize("path", ["/api/v1/participants", "/api/v1/conversions", "/api/v1/referrals"])
def test_a_customer_id_with_control_characters_is_refused_at_the_field(tenant, program, referrer, path):
    body = {
        "/api/v1/participants": {"program": "friends", "external_id": "c\t42", "email": "t@example.pl"},
        "/api/v1/conversions": {
            "order_id": "T-1",
            "amount": "1.00",
            "currency": "PLN",
            "customer": {"external_id": "c\t42"},
        },
        "/api/v1/referrals": {"code": referrer[1].code, "customer": {"external_id": "c\n42"}},
    }[path]
    response = tenant.api.post(path, body, format="json")
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert "external_id" in (fields.get("customer") or fields)
