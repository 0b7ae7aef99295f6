"""The dashboards never contradict their own numbers (issue 18, item 6): no "no clicks yet" beside orders from a typed
code, no "create a program" when there is one, a participation rate of referrers (never the friends they brought,
never above 100%), and a default before/after baseline that ends before the period it is compared with."""

from __future__ import annotations

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.models import DailyStats, ShopDailyStats
from analytics.selectors.dashboard import program_report
from analytics.selectors.periods import Period, merchant_today
from analytics.services import rollup_incremental
from tests.factories import ProgramFactory, join
from tracking.attribution import referral_record_signup

pytestmark = pytest.mark.django_db


def _day(offset: int, merchant) -> datetime.date:
    return merchant_today(merchant) - datetime.timedelta(days=offset)


def _card(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">(.*?)</article>', html, re.S)
    assert match, key
    return match.group(1)


def _orders_from_a_typed_code(merchant, program):
    """Orders and revenue with no click at all: the friend typed the code at checkout."""
    DailyStats.objects.for_merchant(merchant).create(
        program=program, day=_day(1, merchant), attributed_orders=2, referred_new_customers=2,
        referred_revenue=Decimal("240.00"),
    )  # fmt: skip


def test_home_with_orders_from_typed_codes_does_not_say_no_clicks_yet(tenant):
    program = ProgramFactory(merchant=tenant.merchant, currency=tenant.merchant.default_currency)
    _orders_from_a_typed_code(tenant.merchant, program)

    html = tenant.admin.get("/admin/").content.decode()

    assert "240.00 PLN" in _card(html, "referral_revenue")
    assert 'data-empty="no_clicks"' not in html
    assert "No clicks yet" not in html


def test_program_page_with_orders_from_typed_codes_does_not_say_no_clicks_yet(tenant):
    program = ProgramFactory(merchant=tenant.merchant, currency=tenant.merchant.default_currency)
    join(program, email="anna@x.example")
    _orders_from_a_typed_code(tenant.merchant, program)

    html = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()

    assert "240.00 PLN" in _card(html, "referral_revenue")
    assert "No clicks yet" not in html


def test_home_cards_of_a_shop_with_a_program_but_no_data_do_not_say_create_a_program(tenant):
    ProgramFactory(merchant=tenant.merchant, currency=tenant.merchant.default_currency)

    html = tenant.admin.get("/admin/").content.decode()

    assert "create a program" not in _card(html, "referred_customers")
    assert "share your program&#x27;s portal link" in _card(html, "referred_customers")


def test_home_cards_without_a_program_still_say_create_one(tenant):
    html = tenant.admin.get("/admin/").content.decode()
    assert "create a program" in _card(html, "referred_customers")


def test_participation_counts_the_referrer_not_the_friend_they_brought(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant, currency=merchant.default_currency)
    _anna, code = join(program, email="anna@x.example")
    referral_record_signup(
        merchant=merchant, livemode=True, customer_external_id="c-2", customer_email="ben@x.example", code=code.code
    )
    ben, ben_code = join(program, email="ben@x.example", name="Ben")  # the shop enrols its new customer
    assert ben.referred_by_id is not None
    rollup_incremental()
    ShopDailyStats.objects.for_merchant(merchant).create(
        currency=merchant.default_currency, day=_day(1, merchant), orders=2, new_customers=2, revenue=Decimal("100")
    )

    home = _card(tenant.admin.get("/admin/").content.decode(), "participation")
    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()

    assert "50.0%" in home
    assert "1 referrers / 2 customers" in home
    assert "50.0%" in _card(page, "participation")
    assert "1 referrers / 2 customers" in _card(page, "participation")
    # the number opens its list: the referrer, not the friend she brought
    for card in (home, _card(page, "participation")):
        listed = tenant.admin.get(html.unescape(re.search(r'href="([^"]+)"', card).group(1))).content.decode()
        assert code.code in listed
        assert ben_code.code not in listed


def test_participation_is_never_above_one_hundred_percent(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant, currency=merchant.default_currency)
    for n in range(3):
        join(program, email=f"p{n}@x.example")
    rollup_incremental()
    ShopDailyStats.objects.for_merchant(merchant).create(
        currency=merchant.default_currency, day=_day(1, merchant), orders=2, new_customers=2, revenue=Decimal("100")
    )

    card = _card(tenant.admin.get("/admin/").content.decode(), "participation")

    assert "100%" in card or "100.0%" in card
    assert "150" not in card


def test_the_default_baseline_ends_before_the_period_shown_for_a_program_younger_than_the_period(tenant):
    merchant = tenant.merchant
    today = merchant_today(merchant)
    program = ProgramFactory(merchant=merchant, starts_on=today - datetime.timedelta(days=10))
    period = Period(today - datetime.timedelta(days=29), today)

    report = program_report(merchant=merchant, program=program, period=period)

    assert report.baseline.end < period.start
    assert report.baseline.end < program.starts_on
    assert report.baseline.days == period.days


def test_the_default_baseline_of_an_older_program_is_the_days_before_its_start(tenant):
    merchant = tenant.merchant
    today = merchant_today(merchant)
    program = ProgramFactory(merchant=merchant, starts_on=today - datetime.timedelta(days=100))
    period = Period(today - datetime.timedelta(days=29), today)

    report = program_report(merchant=merchant, program=program, period=period)

    assert report.baseline == Period(
        program.starts_on - datetime.timedelta(days=30), program.starts_on - datetime.timedelta(days=1)
    )
