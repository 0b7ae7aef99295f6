"""Orders in another currency than their program: always stored, converted at the merchant's own exchange rate in
force that day (rewards, refunds and stats use the converted amount), or kept unattributed with the reason
currency_mismatch. The merchant keeps the rates in the admin, one by one or from a CSV file."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from analytics.models import DailyStats, ShopDailyStats
from analytics.services import rollup_incremental
from rewards.models import Reward
from rewards.services import refund_apply
from tests.factories import ProgramFactory, join
from tests.rewards.helpers import process, rule
from tracking.exchange_rates import order_day
from tracking.models import Conversion, ExchangeRate, Refund

pytestmark = pytest.mark.django_db

RATES = "/admin/tracking/exchangerate/"
ORDERS = "/admin/tracking/conversion/"


def _rate(merchant, rate: str, *, days_ago: int = 30, base: str = "EUR", quote: str = "PLN") -> ExchangeRate:
    return ExchangeRate.objects.for_merchant(merchant).create(
        base_currency=base,
        quote_currency=quote,
        rate=Decimal(rate),
        # Days of the merchant's calendar (its time zone), as the rate of an order is chosen: UTC's date is a day
        # behind Warsaw's from 23:00 UTC.
        valid_from=order_day(merchant=merchant, at=timezone.now()) - datetime.timedelta(days=days_ago),
    )


def _order(tenant, code, *, order_id="1001", amount="100.00", currency="EUR", days_ago=0, friend="bob@example.org"):
    body = {
        "order_id": order_id,
        "amount": amount,
        "currency": currency,
        "customer": {"external_id": f"ext-{friend}", "email": friend},
        "code": code.code,
        "occurred_at": (timezone.now() - datetime.timedelta(days=days_ago)).isoformat(),
    }
    return tenant.api.post("/api/v1/conversions", body, format="json")


def _refund(tenant, order_id, amount, refund_id):
    response = tenant.api.post(
        f"/api/v1/conversions/{order_id}/refunds", {"amount": amount, "refund_id": refund_id}, format="json"
    )
    assert response.status_code == 201, response.content
    refund_apply(merchant=tenant.merchant, refund_id=Refund.objects.for_merchant(tenant.merchant).get(
        refund_id=refund_id).pk)  # fmt: skip
    return response.json()


# --- without a rate -----------------------------------------------------------------------------------------------


def test_an_order_in_another_currency_without_a_rate_is_stored_unattributed_with_its_reason(tenant, referrer):
    _participant, code = referrer
    same_currency = _order(tenant, code, order_id="pln-1", currency="PLN", friend="other@example.org").json()

    response = _order(tenant, code, amount="129.90")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == set(same_currency)  # the same shape as any other order
    assert (body["amount"], body["currency"], body["status"], body["attributed"]) == (
        "129.90", "EUR", "unattributed", False,
    )  # fmt: skip
    assert (body["attribution_reason"], body["rejection_reason"]) == ("currency_mismatch", "currency_mismatch")
    assert (body["program_amount"], body["program_currency"], body["exchange_rate"], body["referral"]) == (
        None, None, None, None,
    )  # fmt: skip
    assert tenant.api.get("/api/v1/conversions/1001").json()["attribution_reason"] == "currency_mismatch"
    listed = tenant.api.get("/api/v1/conversions", {"attribution_reason": "currency_mismatch"}).json()["results"]
    assert [row["order_id"] for row in listed] == ["1001"]
    assert tenant.api.post("/api/v1/conversions", {"order_id": "1001", "amount": "129.90", "currency": "EUR"},
                           format="json").status_code == 200  # fmt: skip


def test_the_admin_lists_and_filters_orders_left_unattributed_for_their_currency(tenant, referrer):
    _participant, code = referrer
    _order(tenant, code, order_id="eur-1")
    _order(tenant, code, order_id="pln-1", currency="PLN", friend="other@example.org")

    page = tenant.admin.get(ORDERS, {"rejection_reason__exact": "currency_mismatch"}).content.decode()

    assert "eur-1" in page
    assert "pln-1" not in page
    assert "In another currency than the program, without an exchange rate" in page


def test_the_schema_documents_why_an_order_is_not_attributed(tenant):
    schema = json.loads(tenant.api.get("/api/schema/?format=json").content)
    fields = schema["components"]["schemas"]["ConversionOutput"]["properties"]
    assert "currency_mismatch" in fields["attribution_reason"]["description"]
    enum = schema["components"]["schemas"]["AttributionReasonEnum"]["enum"]
    assert "currency_mismatch" in enum
    assert {"program_amount", "program_currency", "exchange_rate", "program_refunded_amount"} <= set(fields)


# --- with a rate --------------------------------------------------------------------------------------------------


def test_an_order_in_another_currency_is_converted_at_the_rate_in_force_that_day(tenant, referrer):
    _participant, code = referrer
    _rate(tenant.merchant, "4.20", days_ago=30)
    _rate(tenant.merchant, "4.30", days_ago=2)
    _rate(tenant.merchant, "9.99", days_ago=-1)  # from tomorrow: not yet

    older = _order(tenant, code, order_id="old", days_ago=5, friend="a@example.org").json()
    newer = _order(tenant, code, order_id="new", amount="99.99", friend="b@example.org").json()

    assert (older["attributed"], older["amount"], older["currency"]) == (True, "100.00", "EUR")
    assert (older["program_amount"], older["program_currency"], older["exchange_rate"]) == ("420.00", "PLN", "4.2")
    assert older["referral"]["code"] == code.code
    # 99.99 x 4.30 = 429.957: rounded half-up to the program currency's cents
    assert (newer["program_amount"], newer["exchange_rate"], newer["attribution_reason"]) == ("429.96", "4.3", "")
    stored = Conversion.objects.for_merchant(tenant.merchant).get(order_id="new")
    assert (stored.amount, stored.currency, stored.program_amount) == (Decimal("99.99"), "EUR", Decimal("429.96"))


def test_a_percentage_reward_on_a_converted_order_is_computed_on_the_program_amount(tenant, program, referrer):
    _participant, code = referrer
    rule(program)  # 10% of the order, amount-off coupon
    _rate(tenant.merchant, "4.3012")
    body = _order(tenant, code, amount="99.99").json()  # 430.076988 -> 430.08 PLN

    assert process(tenant, body["id"]) == "approved"

    reward = Reward.objects.for_merchant(tenant.merchant).get()
    assert (reward.value, reward.currency) == (Decimal("43.01"), "PLN")
    shown = tenant.api.get("/api/v1/conversions/1001").json()["rewards"][0]
    assert (shown["value"], shown["currency"]) == ("43.01", "PLN")


def test_a_refund_of_a_converted_order_converts_at_the_orders_rate_and_never_takes_more(tenant, program, referrer):
    _participant, code = referrer
    rule(program)
    _rate(tenant.merchant, "4.3012", days_ago=10)
    body = _order(tenant, code, amount="99.99", days_ago=3).json()
    process(tenant, body["id"])
    _rate(tenant.merchant, "5.00", days_ago=1)  # a later rate changes nothing for this order

    _refund(tenant, "1001", "33.33", "r-1")  # keeps 66.66 EUR = 286.717992 -> 286.72 PLN

    shown = tenant.api.get("/api/v1/conversions/1001").json()
    assert (shown["refunded_amount"], shown["program_refunded_amount"]) == ("33.33", "143.36")
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    assert reward.value == Decimal("28.67")  # 10% of 286.72: pro-rated on what was kept, in PLN

    _refund(tenant, "1001", "66.66", "r-2")

    shown = tenant.api.get("/api/v1/conversions/1001").json()
    assert (shown["refunded_amount"], shown["program_refunded_amount"], shown["program_amount"]) == (
        "99.99", "430.08", "430.08",
    )  # fmt: skip
    reward.refresh_from_db()
    assert reward.status == Reward.Status.VOIDED
    over = tenant.api.post("/api/v1/conversions/1001/refunds", {"amount": "0.01", "refund_id": "r-3"}, format="json")
    assert over.status_code == 422


def test_many_small_refunds_of_a_converted_order_add_up_to_exactly_its_program_amount(tenant, referrer):
    _participant, code = referrer
    _rate(tenant.merchant, "3.3333")
    _order(tenant, code, amount="10.00")  # 33.333 -> 33.33 PLN
    for n in range(10):
        _refund(tenant, "1001", "1.00", f"r-{n}")
        conversion = Conversion.objects.for_merchant(tenant.merchant).get()
        assert Decimal(0) <= conversion.program_refunded_amount <= conversion.program_amount
    assert (conversion.program_refunded_amount, conversion.kept_program_amount) == (Decimal("33.33"), Decimal(0))


def test_stats_count_a_converted_order_in_the_programs_currency(tenant, program, referrer):
    _participant, code = referrer
    _rate(tenant.merchant, "4.30")
    _order(tenant, code, amount="100.00")  # 430.00 PLN, attributed
    _order(tenant, code, order_id="walk-in", amount="50.00", friend="x@example.org").json()  # EUR, attributed
    tenant.api.post("/api/v1/conversions", {"order_id": "no-ref", "amount": "20.00", "currency": "EUR"},
                    format="json")  # fmt: skip
    _refund(tenant, "1001", "10.00", "r-1")  # keeps 90 EUR = 387.00 PLN

    rollup_incremental()

    day = DailyStats.objects.for_merchant(tenant.merchant).get(program=program)
    assert (day.referred_revenue_gross, day.referred_refunds, day.referred_revenue) == (
        Decimal("645.00"), Decimal("43.00"), Decimal("602.00"),
    )  # fmt: skip
    shops = {s.currency: s for s in ShopDailyStats.objects.for_merchant(tenant.merchant)}
    # The shop's PLN sales hold the converted orders (its referred share stays within 100%), EUR the rest.
    assert (shops["PLN"].revenue, shops["PLN"].attributed_revenue, shops["PLN"].orders) == (
        Decimal("602.00"), Decimal("602.00"), 2,
    )  # fmt: skip
    assert (shops["EUR"].revenue, shops["EUR"].attributed_orders, shops["EUR"].orders) == (Decimal("20.00"), 0, 1)


# --- the rates in the admin ---------------------------------------------------------------------------------------


def _import(client, content: bytes, **data):
    upload = SimpleUploadedFile("rates.csv", content, content_type="text/csv")
    return client.post(f"{RATES}import/", {"file": upload, "quote_currency": "PLN", **data})


def test_a_csv_of_rates_is_imported_and_importing_it_again_changes_nothing(tenant):
    content = b"currency,rate,valid_from\nEUR,4.2875,2026-01-01\nUSD,3.9512,2026-01-01\nEUR,4.3001,2026-02-01\n"

    first = _import(tenant.admin, content)
    again = _import(tenant.admin, content)

    assert (first.status_code, again.status_code) == (302, 302)
    rates = ExchangeRate.objects.for_merchant(tenant.merchant)
    assert sorted((r.base_currency, r.quote_currency, str(r.valid_from), r.rate) for r in rates) == [
        ("EUR", "PLN", "2026-01-01", Decimal("4.2875")),
        ("EUR", "PLN", "2026-02-01", Decimal("4.3001")),
        ("USD", "PLN", "2026-01-01", Decimal("3.9512")),
    ]
    messages = [str(m) for m in again.wsgi_request._messages]
    assert "0 new rates, 0 rates changed, 3 already there" in messages[-1]


def test_importing_a_corrected_rate_replaces_it_and_a_quote_currency_column_is_read(tenant):
    _import(tenant.admin, b"currency,rate,valid_from\nEUR,4.2875,2026-01-01\n")
    response = _import(
        tenant.admin,
        b"\xef\xbb\xbfcurrency;rate;valid_from;quote_currency\nEUR;4,2900;2026-01-01;PLN\nPLN;0,2331;2026-01-01;EUR\n",
    )
    assert response.status_code == 302
    rates = {(r.base_currency, r.quote_currency): r.rate for r in ExchangeRate.objects.for_merchant(tenant.merchant)}
    assert rates == {("EUR", "PLN"): Decimal("4.29"), ("PLN", "EUR"): Decimal("0.2331")}


@pytest.mark.parametrize("end", [b"\r", b"\r\n", b"\n"])
def test_a_csv_of_rates_with_any_line_ends_is_imported(tenant, end):
    content = end.join([b"currency;rate;valid_from", b"EUR;4,2875;2026-01-01", b"USD;3,9512;2026-01-01", b""])
    response = _import(tenant.admin, b"currency,rate,valid_from\r\nEUR,4.2875,2026-01-01\rUSD,3.9512,2026-01-01\n")
    assert response.status_code == 302
    assert _import(tenant.admin, content).status_code == 302
    rates = {r.base_currency: r.rate for r in ExchangeRate.objects.for_merchant(tenant.merchant)}
    assert rates == {"EUR": Decimal("4.2875"), "USD": Decimal("3.9512")}


def test_a_csv_with_bad_lines_imports_nothing_and_says_which_lines_and_why(tenant):
    content = (
        b"currency,rate,valid_from\n"
        b"EUR,4.2875,2026-01-01\n"
        b"EURO,4.1,2026-01-01\n"
        b"USD,-3.9,2026-01-01\n"
        b"GBP,5.1,01/02/2026\n"
        b"PLN,1,2026-01-01\n"
        b"CHF,abc,2026-01-01\n"
        b"EUR,4.5,2026-01-01\n"
    )
    response = _import(tenant.admin, content)

    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 4", "Line 5", "Line 6", "Line 7", "Line 8"]
    expected = ["Unknown currency", "greater than zero", "YYYY-MM-DD", "must differ", "as a number", "another rate"]
    assert [why in error for why, error in zip(expected, errors, strict=True)] == [True] * 6
    assert ExchangeRate.objects.for_merchant(tenant.merchant).count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no rates"),
        (b"currency,rate,valid_from\n", "no rates"),
        (b"code,value\nEUR,4.1\n", "currency, rate and valid_from"),
        (b"\xff\xfe\x00c", "UTF-8"),
        (b"currency,rate,valid_from\nEUR,4.1,2026-01-01\x00\n", "UTF-8"),  # a NUL: binary
        (b'currency,rate,valid_from\n"EUR\n' + b"x" * 200_000, "not valid CSV"),  # a field past csv's limit
    ],
)
def test_a_csv_that_is_not_a_list_of_rates_is_a_clear_error(tenant, content, message):
    response = _import(tenant.admin, content or b"\n")
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["file"])
    assert ExchangeRate.objects.for_merchant(tenant.merchant).count() == 0


def test_a_rate_added_in_the_admin_is_checked(tenant):
    form = {"base_currency": "EUR", "quote_currency": "PLN", "rate": "4.2875", "valid_from": "2026-01-01"}
    assert tenant.admin.post(f"{RATES}add/", form).status_code == 302

    duplicate = tenant.admin.post(f"{RATES}add/", form)
    same = tenant.admin.post(f"{RATES}add/", {**form, "quote_currency": "EUR", "valid_from": "2026-01-02"})
    zero = tenant.admin.post(f"{RATES}add/", {**form, "rate": "0", "valid_from": "2026-01-03"})

    assert "from this day already" in str(duplicate.context["adminform"].form.errors["valid_from"])
    assert "must differ" in str(same.context["adminform"].form.errors["quote_currency"])
    assert "greater than zero" in str(zero.context["adminform"].form.errors["rate"])
    assert ExchangeRate.objects.for_merchant(tenant.merchant).count() == 1
    page = tenant.admin.get(RATES).content.decode()
    assert "4.2875<" in page
    assert "Import CSV" in page


def test_an_analyst_cannot_import_rates(tenant):
    from referral_saas.tenancy.models import Membership
    from tests.conftest import staff_client
    from tests.factories import MembershipFactory, UserFactory

    analyst = UserFactory(email="analyst@alpha.example")
    MembershipFactory(merchant=tenant.merchant, user=analyst, role=Membership.Role.ANALYST)
    client = staff_client(analyst, tenant.merchant)
    assert _import(client, b"currency,rate,valid_from\nEUR,4.2875,2026-01-01\n").status_code == 403
    assert ExchangeRate.objects.for_merchant(tenant.merchant).count() == 0


# --- tenancy ------------------------------------------------------------------------------------------------------


def test_another_merchants_rates_are_never_seen_nor_used(tenant, other_tenant, referrer):
    theirs = _rate(other_tenant.merchant, "4.30")
    _participant, code = referrer

    body = _order(tenant, code).json()
    page = tenant.admin.get(RATES).content.decode()
    foreign = tenant.admin.get(f"{RATES}{theirs.pk}/change/")
    _import(tenant.admin, f"currency,rate,valid_from\nEUR,9.99,{theirs.valid_from}\n".encode())

    assert (body["attributed"], body["attribution_reason"]) == (False, "currency_mismatch")
    assert "4.30" not in page
    assert foreign.status_code == 404
    theirs.refresh_from_db()
    assert theirs.rate == Decimal("4.30")
    assert ExchangeRate.objects.for_merchant(tenant.merchant).get().rate == Decimal("9.99")
    # and the other way round: their order uses their rate, not ours
    other_program = ProgramFactory(merchant=other_tenant.merchant, slug="pln", currency="PLN")
    _p, other_code = join(other_program, email="olga@example.org")
    assert _order(other_tenant, other_code).json()["program_amount"] == "430.00"
