"""Currencies with three decimals (KWD, BHD, OMR, JOD, TND, LYD) work end to end: orders, rewards, refunds, the API,
the admin and the stats keep the third decimal; more decimals than a currency has are refused at the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics.models import DailyStats, ShopDailyStats
from analytics.services import rollup_incremental
from referral_saas.money import currency_decimals, format_money
from rewards.models import Reward
from rewards.services import refund_apply
from tests.factories import ProgramFactory, join
from tests.rewards.helpers import order, process, rule
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def dinar(tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="kuwait", currency="KWD")
    _participant, code = join(program, email="layla@example.org", name="Layla")
    return program, code


def _refund(tenant, order_id, amount, refund_id="r-1"):
    return tenant.api.post(
        f"/api/v1/conversions/{order_id}/refunds", {"amount": amount, "refund_id": refund_id}, format="json"
    )


@pytest.mark.parametrize("currency", ["KWD", "BHD", "OMR", "JOD", "TND", "LYD"])
def test_the_dinars_have_three_decimals(currency):
    assert currency_decimals(currency) == 3
    assert format_money(Decimal("1.25"), currency) == "1.250 " + currency


def test_a_kwd_order_keeps_its_third_decimal_and_pays_a_reward_rounded_half_up(tenant, dinar):
    program, code = dinar
    rule(program)  # 10% of the order

    body = order(tenant, code, amount="12.345", currency="KWD")

    assert (body["amount"], body["currency"], body["program_amount"], body["attributed"]) == (
        "12.345", "KWD", "12.345", True,
    )  # fmt: skip
    assert Conversion.objects.for_merchant(tenant.merchant).get().amount == Decimal("12.345")
    assert process(tenant, body["id"]) == "approved"
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    assert (reward.value, reward.currency) == (Decimal("1.235"), "KWD")  # 1.2345 half-up
    shown = tenant.api.get("/api/v1/conversions/1001").json()
    assert (shown["amount"], shown["rewards"][0]["value"]) == ("12.345", "1.235")


def test_a_partial_kwd_refund_keeps_its_third_decimal_and_pro_rates_the_reward(tenant, dinar):
    program, code = dinar
    rule(program)
    process(tenant, order(tenant, code, amount="12.345", currency="KWD")["id"])

    response = _refund(tenant, "1001", "1.005")

    assert response.status_code == 201, response.content
    assert (response.json()["amount"], response.json()["order_refunded_amount"]) == ("1.005", "1.005")
    refund_apply(merchant=tenant.merchant, refund_id=Refund.objects.for_merchant(tenant.merchant).get().pk)
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    assert reward.value == Decimal("1.134")  # 10% of the 11.340 kept
    shown = tenant.api.get("/api/v1/conversions/1001").json()
    assert (shown["refunded_amount"], shown["program_refunded_amount"]) == ("1.005", "1.005")
    assert _refund(tenant, "1001", "11.341", "r-2").status_code == 422  # 11.340 remain
    assert _refund(tenant, "1001", "11.340", "r-3").status_code == 201


def test_amounts_with_more_decimals_than_the_currency_has_are_refused_at_the_field(tenant, dinar):
    _program, code = dinar
    body = {"order_id": "o-1", "amount": "12.3456", "currency": "KWD", "code": code.code}

    four = tenant.api.post("/api/v1/conversions", body, format="json")
    yen = tenant.api.post("/api/v1/conversions", {**body, "amount": "1500.5", "currency": "JPY"}, format="json")

    assert four.status_code == 400
    assert four.json()["error"]["fields"]["amount"] == ["KWD amounts have at most 3 decimal places."]
    assert yen.status_code == 400
    assert yen.json()["error"]["fields"]["amount"] == ["JPY amounts have at most 0 decimal places."]
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()

    order(tenant, code, order_id="o-2", amount="10.000", currency="KWD")
    refund = _refund(tenant, "o-2", "1.0005")
    assert refund.status_code == 400
    assert "amount" in refund.json()["error"]["fields"]
    assert not Refund.objects.for_merchant(tenant.merchant).exists()


def test_amounts_print_with_their_currencys_own_decimals(tenant, dinar):
    _program, code = dinar
    yen = ProgramFactory(merchant=tenant.merchant, slug="yen", currency="JPY")
    _p, yen_code = join(yen, email="kenji@example.org", name="Kenji")

    kwd = order(tenant, code, order_id="k-1", amount="1.25", currency="KWD")
    jpy = order(tenant, yen_code, order_id="j-1", amount="1500", currency="JPY", friend="yuki@example.org")
    pln = order(tenant, None, order_id="p-1", amount="129.9", currency="PLN", friend="ola@example.org")

    assert (kwd["amount"], kwd["refunded_amount"], kwd["program_amount"]) == ("1.250", "0.000", "1.250")
    assert (jpy["amount"], jpy["program_amount"]) == ("1500", "1500")
    assert (pln["amount"], pln["program_amount"]) == ("129.90", None)
    orders = tenant.admin.get("/admin/tracking/conversion/").content.decode()
    assert ">1.250<" in orders
    assert ">1,500<" in orders
    assert ">129.90<" in orders


def test_the_stats_add_up_kwd_revenue_exactly(tenant, dinar):
    program, code = dinar
    order(tenant, code, order_id="k-1", amount="12.345", currency="KWD", friend="a@example.org")
    order(tenant, code, order_id="k-2", amount="0.005", currency="KWD", friend="b@example.org")
    order(tenant, None, order_id="k-3", amount="7.777", currency="KWD", friend="c@example.org")
    assert _refund(tenant, "k-1", "1.005").status_code == 201

    rollup_incremental()

    day = DailyStats.objects.for_merchant(tenant.merchant).get(program=program)
    assert (day.referred_revenue_gross, day.referred_refunds, day.referred_revenue) == (
        Decimal("12.350"), Decimal("1.005"), Decimal("11.345"),
    )  # fmt: skip
    shop = ShopDailyStats.objects.for_merchant(tenant.merchant).get(currency="KWD")
    assert (shop.revenue_gross, shop.revenue, shop.attributed_revenue) == (
        Decimal("20.127"), Decimal("19.122"), Decimal("11.345"),
    )  # fmt: skip
    stats = tenant.api.get("/api/v1/stats", {"program": "kuwait"}).json()
    assert (stats["totals"]["revenue"], stats["totals"]["refunds"]) == ("11.345", "1.005")


@pytest.mark.parametrize(
    ("currency", "budget", "saved"),
    [("KWD", "250.125", True), ("KWD", "250.1255", False), ("JPY", "99.5", False), ("PLN", "99.505", False)],
)
def test_a_programs_budget_has_its_currencys_decimals(tenant, currency, budget, saved):
    from programs.models import Program
    from tests.programs.test_program_admin import VALID

    response = tenant.admin.post(
        "/admin/programs/program/add/", {**VALID, "currency": currency, "budget": budget, "goal_revenue": "1000"}
    )

    assert (response.status_code == 302) is saved
    if saved:
        assert Program.objects.for_merchant(tenant.merchant).get().budget == Decimal(budget)
    else:
        assert "budget" in response.context["adminform"].form.errors
