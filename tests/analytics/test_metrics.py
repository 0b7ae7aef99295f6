"""The statistics behind the A/B verdict and the KPIs, against hand-computed numbers."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from analytics import metrics
from analytics.selectors.abtest import ab_verdict
from tests.analytics.helpers import ttp_bucket


def test_two_proportion_z_test_matches_the_hand_computed_example():
    # A: 200 purchases from 2000 clicks (10%); B: 246 from 2000 (12.3%).
    # pooled p = 446 / 4000 = 0.1115; SE = sqrt(0.1115 * 0.8885 * (1/2000 + 1/2000)) = 0.0099533
    # z = (0.123 - 0.100) / 0.0099533 = 2.3108; two-sided p = 2 * (1 - Phi(2.3108)) = 0.02084
    test = metrics.two_proportion_z_test(200, 2000, 246, 2000)
    assert test.rate_a == 0.1
    assert test.rate_b == 0.123
    assert test.lift == pytest.approx(0.23)
    assert test.z == pytest.approx(2.3108, abs=1e-4)
    assert test.p_value == pytest.approx(0.02084, abs=1e-4)


def test_the_verdict_in_plain_language():
    text, p_value = ab_verdict("A", 200, 2000, "B", 246, 2000)
    assert text == "B converts 23% better than A, p = 0.02."
    assert p_value == pytest.approx(0.0208, abs=1e-3)
    worse, _p = ab_verdict("A", 246, 2000, "B", 200, 2000)
    assert worse.startswith("B converts 19% worse than A")
    unclear, p_value = ab_verdict("A", 200, 2000, "B", 210, 2000)
    assert unclear.startswith("No clear winner yet: B converts 5% better than A")
    assert p_value > 0.05
    early, p_value = ab_verdict("A", 2, 40, "B", 5, 40)
    assert "not enough data yet" in early
    assert p_value is None


def test_no_test_without_trials_or_variance():
    assert metrics.two_proportion_z_test(0, 0, 1, 10) is None
    assert metrics.two_proportion_z_test(0, 100, 0, 100) is None


def test_money_ratios_round_half_up_to_the_cent():
    assert metrics.money_ratio(Decimal("10.00"), 3) == Decimal("3.33")
    assert metrics.money_ratio(Decimal("0.05"), 2) == Decimal("0.03")
    assert metrics.money_ratio(Decimal("15000"), 136) == Decimal("110.29")
    assert metrics.money_ratio(Decimal("1"), 0) is None


def test_time_to_purchase_buckets_agree_with_sql_width_bucket_and_give_a_close_median():
    assert ttp_bucket(-5) == 0
    assert ttp_bucket(59) == 0
    assert ttp_bucket(60) == 1
    assert ttp_bucket(10**9) == len(metrics.TTP_EDGES)
    durations = [3600 * h for h in (1, 2, 5, 26, 49, 50, 70)]
    histogram = {}
    for seconds in durations:
        bucket = ttp_bucket(seconds)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    median = metrics.histogram_median(histogram)
    assert math.isclose(median, 26 * 3600, rel_tol=0.2)  # within one bucket (x1.2)
    assert metrics.histogram_median({}) is None


def test_change_against_the_previous_period():
    assert metrics.change(150, 100) == 0.5
    assert metrics.change(50, 100) == -0.5
    assert metrics.change(5, 0) is None


def test_more_first_purchases_than_clicks_is_no_rate_to_test():
    # Codes typed at the checkout bring orders without a click: 150 first purchases from 100 clicks is no rate.
    assert metrics.two_proportion_z_test(150, 100, 60, 100) is None
    assert metrics.two_proportion_z_test(-1, 100, 60, 100) is None
    text, p_value = ab_verdict("A", 150, 100, "B", 60, 100)
    assert text.startswith("B against A: not enough click data to compare (more first purchases than clicks")
    assert p_value is None
    text, _p = ab_verdict("A", 6, 100, "B", 120, 110)
    assert "not enough click data" in text


def test_no_purchase_against_some_with_enough_clicks_is_a_result():
    # A: 0 of 1000 clicks, B: 12 of 1000. pooled p = 12 / 2000 = 0.006; SE = sqrt(0.006 * 0.994 * 2 / 1000) =
    # 0.0034537; z = 0.012 / 0.0034537 = 3.4745; two-sided p = 0.000512.
    test = metrics.two_proportion_z_test(0, 1000, 12, 1000)
    assert test.lift is None
    assert test.z == pytest.approx(3.4745, abs=1e-3)
    assert test.p_value == pytest.approx(0.000512, abs=2e-5)
    text, p_value = ab_verdict("A", 0, 1000, "B", 12, 1000)
    assert text == "B converts better than A (1.20% against 0.00%), p < 0.01."
    assert p_value == pytest.approx(0.000512, abs=2e-5)
    worse, _p = ab_verdict("A", 12, 1000, "B", 0, 1000)
    assert worse.startswith("B converts 100% worse than A")
    unclear, p_value = ab_verdict("A", 0, 5000, "B", 10, 100000)
    assert unclear.startswith("No clear winner yet: B converts 0.01% against 0.00% for A")
    assert p_value > 0.05
