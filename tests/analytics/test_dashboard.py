"""The admin home and the program page: numbers from the rollups, links to the lists behind them, empty states,
charts with tables behind them, A/B results, before/after, top referrers; another merchant's program is a 404."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.models import DailyStats, ShopDailyStats
from analytics.selectors.dashboard import program_report
from analytics.selectors.periods import Period, merchant_today
from analytics.services import rollup_incremental
from programs.models import ProgramVariant
from tests.analytics.helpers import World
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db


def _day(offset: int, merchant) -> datetime.date:
    return merchant_today(merchant) - datetime.timedelta(days=offset)


def _stats(merchant, program, day, variant=None, **numbers):
    return DailyStats.objects.for_merchant(merchant).create(program=program, variant=variant, day=day, **numbers)


def test_home_without_a_program_says_to_create_one(tenant):
    html = tenant.admin.get("/admin/").content.decode()
    assert 'data-empty="no_program"' in html
    assert reverse("admin:programs_program_add") in html


def test_home_with_a_program_but_no_clicks_says_to_share_the_portal(tenant):
    ProgramFactory(merchant=tenant.merchant, name="Friends")
    html = tenant.admin.get("/admin/").content.decode()
    assert 'data-empty="no_clicks"' in html
    assert "Friends" in html


def test_home_cards_show_the_period_and_the_change_against_the_previous_one(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant, currency=merchant.default_currency)
    _stats(merchant, program, _day(1, merchant), clicks=200, attributed_orders=10, referred_new_customers=8,
           referred_revenue=Decimal("1000.50"), cost_issued=Decimal("100.00"))  # fmt: skip
    _stats(merchant, program, _day(40, merchant), clicks=100, referred_new_customers=4, referred_revenue=Decimal("500"))
    ShopDailyStats.objects.for_merchant(merchant).create(
        currency=merchant.default_currency, day=_day(1, merchant), orders=40, revenue=Decimal("4002.00")
    )

    html = tenant.admin.get("/admin/").content.decode()

    assert "no_program" not in html
    assert "no_clicks" not in html
    card = _card(html, "referred_customers")
    assert ">8<" in card
    assert "+100% vs the previous period" in card
    assert "1,000.50 PLN" in _card(html, "referral_revenue")
    assert "25.0% of all sales" in _card(html, "referral_revenue")
    assert "5.00%" in _card(html, "conversion_rate")
    assert "901%" in _card(html, "roi")  # (1000.50 - 100) / 100 = 900.5%, rounded half-up
    assert reverse("admin:analytics_program_dashboard", args=[program.pk]) in html


def _card(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">(.*?)</article>', html, re.S)
    assert match, key
    return match.group(1)


def test_program_page_with_real_events(tenant):
    merchant = tenant.merchant
    world = World(merchant, seed=3, start=datetime.datetime.now(zoneinfo.ZoneInfo("UTC")) - datetime.timedelta(days=7))
    world.ab.budget = Decimal("500")
    world.ab.goal_customers = 10
    world.ab.save()
    world.people(10)
    world.events(150)
    rollup_incremental()
    url = reverse("admin:analytics_program_dashboard", args=[world.ab.pk])

    response = tenant.admin.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="analytics-chart-data"' in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert 'role="img"' in html
    assert "Show as a table" in html
    for key in ("referred_customers", "referral_revenue", "conversion_rate", "click_through", "participation", "aov",
                "ltv", "time_to_purchase", "rewards_cost", "cpa", "roi", "budget", "goal"):  # fmt: skip
        assert f'data-kpi="{key}"' in html, key
    assert "A/B results" in html
    assert "Before and after" in html
    assert "Top referrers" in html
    # every number links to the list behind it, filtered to the program
    assert f"/admin/tracking/conversion/?program__id__exact={world.ab.pk}" in html
    assert f"/admin/tracking/click/?program__id__exact={world.ab.pk}" in html
    assert "cdn" not in html.lower()


def test_the_links_behind_the_numbers_open_filtered_lists(tenant):
    merchant = tenant.merchant
    world = World(merchant, seed=8, start=datetime.datetime.now(zoneinfo.ZoneInfo("UTC")) - datetime.timedelta(days=7))
    world.people(6)
    world.events(60)
    rollup_incremental()
    report = program_report(merchant=merchant, program=world.ab, period=Period(_day(29, merchant), _day(0, merchant)))
    for card in report.cards:
        if card.link:
            response = tenant.admin.get(card.link)
            assert response.status_code == 200, (card.key, card.link)
            assert "?e=1" not in response.get("Location", ""), card.link


def test_program_page_of_an_empty_program_explains_what_to_do(tenant):
    program = ProgramFactory(merchant=tenant.merchant)
    html = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()
    assert "Nobody has joined this program yet" in html
    assert f"/p/{tenant.merchant.slug}/{program.slug}/" in html


def test_another_merchants_program_page_is_a_404(tenant, other_tenant):
    program = ProgramFactory(merchant=tenant.merchant)
    url = reverse("admin:analytics_program_dashboard", args=[program.pk])
    assert tenant.admin.get(url).status_code == 200
    assert other_tenant.admin.get(url).status_code == 404


def test_before_after_compares_the_baseline_with_the_program_period(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant)
    shop = ShopDailyStats.objects.for_merchant(merchant)
    shop.create(currency="PLN", day=datetime.date(2026, 1, 10), orders=100, revenue=Decimal("10000"), new_customers=100)
    shop.create(currency="PLN", day=datetime.date(2026, 2, 10), orders=136, revenue=Decimal("15000"), new_customers=150)
    report = program_report(
        merchant=merchant,
        program=program,
        period=Period(datetime.date(2026, 2, 1), datetime.date(2026, 2, 28)),
        baseline=Period(datetime.date(2026, 1, 1), datetime.date(2026, 1, 31)),
    )
    rows = {str(row["label"]): row for row in report.before_after}
    assert (rows["New customers"]["before"], rows["New customers"]["after"]) == ("100", "150")
    assert rows["New customers"]["change"] == "50%"
    assert (rows["Sales"]["before"], rows["Sales"]["after"]) == ("10,000.00 PLN", "15,000.00 PLN")
    assert rows["Average order value"]["before"] == "100.00 PLN"
    assert rows["Average order value"]["after"] == "110.29 PLN"  # 15000 / 136, to the cent


def _ab_program(merchant):
    program = ProgramFactory(merchant=merchant)
    variants = ProgramVariant.objects.for_merchant(merchant)
    return program, variants.create(program=program, name="A"), variants.create(program=program, name="B")


def test_ab_results_per_variant_with_the_z_test(tenant):
    merchant = tenant.merchant
    program, a, b = _ab_program(merchant)
    day = _day(2, merchant)
    _stats(merchant, program, day, a, participants_joined=100, joined_and_shared=40, clicks=1000,
           referred_new_customers=100, referred_revenue=Decimal("5000"), cost_issued=Decimal("1000"))  # fmt: skip
    _stats(merchant, program, day, b, participants_joined=100, joined_and_shared=50, clicks=1000,
           referred_new_customers=130, referred_revenue=Decimal("6500"), cost_issued=Decimal("1300"))  # fmt: skip

    report = program_report(merchant=merchant, program=program, period=Period(_day(29, merchant), _day(0, merchant)))

    first, second = report.ab
    assert (first.name, first.is_baseline, first.share_rate, first.conversion_rate) == ("A", True, 0.4, 0.1)
    assert (second.share_rate, second.conversion_rate) == (0.5, 0.13)
    assert first.cpa == Decimal("10.00")
    assert second.cpa == Decimal("10.00")
    assert second.p_value == pytest.approx(0.0357, abs=5e-4)
    assert second.verdict == "B converts 30% better than A, p = 0.04."
    html = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()
    assert "B converts 30% better than A, p = 0.04." in html


def test_ab_results_say_when_there_is_not_enough_data(tenant):
    merchant = tenant.merchant
    program, a, b = _ab_program(merchant)
    _stats(merchant, program, _day(1, merchant), a, clicks=30, referred_new_customers=3)
    _stats(merchant, program, _day(1, merchant), b, clicks=30, referred_new_customers=6)
    report = program_report(merchant=merchant, program=program, period=Period(_day(29, merchant), _day(0, merchant)))
    assert "not enough data yet" in report.ab[1].verdict
    assert report.ab[1].p_value is None


@pytest.mark.parametrize("days", [30, 400])
def test_top_referrers_of_the_period(tenant, days):
    from analytics.selectors import leaderboard
    from analytics.selectors.leaderboard import _leaderboard_key, _referrer_sums

    merchant = tenant.merchant
    world = World(merchant, seed=12, start=datetime.datetime.now(zoneinfo.ZoneInfo("UTC")) - datetime.timedelta(days=7))
    world.people(12)
    world.events(200)
    rollup_incremental()
    period = Period(_day(days - 1, merchant), _day(0, merchant))
    leaderboard.LEADERBOARD_SCAN_DAYS, saved = 62, leaderboard.LEADERBOARD_SCAN_DAYS
    board = leaderboard.top_referrers(merchant=merchant, livemode=True, program=world.ab, period=period, limit=3)
    leaderboard.LEADERBOARD_SCAN_DAYS = saved
    everyone = sorted(_referrer_sums(merchant=merchant, livemode=True, program=world.ab, period=period),
                      key=_leaderboard_key)  # fmt: skip
    expected = [row["participant"] for row in everyone if row["new_customers"] or row["signups"] or row["orders"]][:3]
    assert [row["participant"] for row in board] == expected
    assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
    assert board, "the seed made referrers"


def test_ab_results_with_more_first_purchases_than_clicks_say_so(tenant):
    merchant = tenant.merchant
    program, a, b = _ab_program(merchant)
    _stats(merchant, program, _day(0, merchant), a, clicks=100, referred_new_customers=150)
    _stats(merchant, program, _day(0, merchant), b, clicks=100, referred_new_customers=60)

    response = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk]))

    assert response.status_code == 200
    assert "B against A: not enough click data to compare" in response.content.decode()
    assert response.context["report"].ab[1].p_value is None


def test_money_has_the_currencys_decimals(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant, currency="JPY")
    _stats(merchant, program, _day(1, merchant), clicks=10, attributed_orders=2, referred_new_customers=2,
           referred_revenue=Decimal("15000"), cost_issued=Decimal("1000"))  # fmt: skip

    response = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk]))

    html = response.content.decode()
    assert "15,000 JPY" in _card(html, "referral_revenue")
    assert "1,000 JPY" in _card(html, "rewards_cost")
    assert "500 JPY" in _card(html, "cpa")
    assert "15,000.00" not in html
    assert ">15,000 JPY</a></td>" in html  # the day-by-day table too


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [(0.29, 1, "29.0%"), (0.29, 2, "29.00%"), (0.57, 0, "57%"), (7 / 34, 1, "20.6%"), (0.0288, 1, "2.9%"),
     (Decimal("0.4117"), 1, "41.2%"), (-0.004, 0, "0%"), (-0.0004, 1, "0.0%"), (1.5, 0, "150%")],
)  # fmt: skip
def test_percentages_are_rounded_half_up_and_never_minus_zero(value, digits, shown):
    from analytics.selectors.formatting import format_percent

    assert format_percent(value, digits) == shown


@pytest.mark.parametrize(
    ("change", "text", "good"), [(0.006, "+1%", True), (-0.006, "-1%", False), (0.004, "±0%", None),
                                 (-0.004, "±0%", None), (0.005, "+1%", True), (-0.25, "-25%", False)],
)  # fmt: skip
def test_a_cards_change_agrees_with_its_sign_and_colour(change, text, good):
    from analytics.selectors.formatting import Card

    card = Card("k", "label", "1", "", change=change)
    assert (card.change_text, card.change_is_good) == (text, good)


def test_a_small_drop_is_not_shown_as_minus_zero(tenant):
    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant)
    _stats(merchant, program, _day(1, merchant), clicks=1006, attributed_orders=29)
    _stats(merchant, program, _day(31, merchant), clicks=1000, attributed_orders=29)

    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk])).content.decode()

    assert "-1% vs the previous period" in _card(page, "conversion_rate")  # 2.88% against 2.90%: -0.6%
    assert "-0%" not in page


@pytest.mark.parametrize(
    ("value", "shown"), [(8 / 3, "2.7"), (2.96, "3.0"), (2.25, "2.3"), (2.04, "2.0"), (-0.01, "0.0"), (None, None)]
)
def test_decimals_are_rounded_half_up_not_cut(value, shown):
    from analytics.selectors.formatting import format_decimal

    assert format_decimal(value) == shown


def test_the_home_participation_rate_counts_a_person_in_two_programs_once(tenant):
    from analytics.services import rollup_incremental
    from tests.factories import join

    merchant = tenant.merchant
    first = ProgramFactory(merchant=merchant, currency=merchant.default_currency, slug="one")
    second = ProgramFactory(merchant=merchant, currency=merchant.default_currency, slug="two")
    join(first, email="anna@x.example")
    join(second, email="anna@x.example")  # the same person
    rollup_incremental()
    ShopDailyStats.objects.for_merchant(merchant).create(
        currency=merchant.default_currency, day=_day(1, merchant), orders=2, new_customers=2, revenue=Decimal("100")
    )

    card = _card(tenant.admin.get("/admin/").content.decode(), "participation")

    assert "50.0%" in card
    assert "1 referrers / 2 customers" in card


def test_the_budget_and_the_goal_are_the_whole_programs_whatever_the_variant_shown(tenant):
    merchant = tenant.merchant
    program, a, b = _ab_program(merchant)
    program.budget, program.goal_customers = Decimal("100"), 4
    program.save()
    day = _day(2, merchant)
    _stats(merchant, program, day, a, referred_new_customers=1, cost_issued=Decimal("10"))
    _stats(merchant, program, day, b, referred_new_customers=1, cost_issued=Decimal("30"))
    url = reverse("admin:analytics_program_dashboard", args=[program.pk])

    html = tenant.admin.get(f"{url}?variant={b.pk}").content.decode()

    assert "40%" in _card(html, "budget")
    assert "40.00 PLN of 100.00 PLN since the start" in _card(html, "budget")
    assert "2 of 4 customers" in _card(html, "goal")
    assert "30.00 PLN" in _card(html, "rewards_cost")  # the period's cards do follow the variant


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        # p = 0.0488: significant, so never "p = 0.05"
        ((100, 1000), (128, 1000), "B converts 28% better than A, p = 0.048."),
        # a lift of exactly 12.5% rounds half-up like every other percentage on the page
        ((800, 10000), (900, 10000), "B converts 13% better than A, p = 0.01."),
    ],
)
def test_the_verdicts_numbers_agree_with_it(a, b, verdict):
    from analytics.selectors.abtest import ab_verdict

    text, _p = ab_verdict("A", *a, "B", *b)
    assert text == verdict
