"""Pure calculations behind the KPIs: ratios, the time-to-purchase histogram, the two-proportion z-test.

No database here: selectors feed these sums from the rollups, tests feed them hand-computed examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from referral_saas.money import quantize

CENT = Decimal("0.01")

# Time from the click (or sign-up) that opened the attribution window to the first purchase, in seconds: geometric
# buckets (x1.2) from one minute to beyond a year. Bucket 0 is "under a minute"; bucket i (1..n) is
# [TTP_EDGES[i-1], TTP_EDGES[i]); bucket n is TTP_EDGES[-1] and over. PostgreSQL's width_bucket() numbers them the
# same way, so the rollup and this module agree.
TTP_EDGES: list[int] = []
_edge = 60.0
while _edge < 400 * 86400:
    TTP_EDGES.append(round(_edge))
    _edge *= 1.2


def merge_histograms(histograms) -> dict[int, int]:
    total: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in (histogram or {}).items():
            total[int(bucket)] = total.get(int(bucket), 0) + int(count)
    return total


def histogram_median(histogram: dict[int, int]) -> float | None:
    """The median duration in seconds, interpolated inside its bucket (within one bucket's width, 20%)."""
    count = sum(histogram.values())
    if count == 0:
        return None
    middle = count / 2
    seen = 0
    for bucket in sorted(histogram):
        n = histogram[bucket]
        if seen + n >= middle:
            low = 0 if bucket == 0 else TTP_EDGES[bucket - 1]
            high = TTP_EDGES[bucket] if bucket < len(TTP_EDGES) else TTP_EDGES[-1] * 1.2
            return low + (high - low) * ((middle - seen) / n)
        seen += n
    return None  # pragma: no cover - the loop always reaches the middle


def ratio(numerator, denominator) -> float | None:
    """numerator / denominator as a float (rates, not money), None when there is nothing to divide by."""
    if not denominator:
        return None
    return float(numerator) / float(denominator)


def share(part, whole) -> float | None:
    """part / whole for a part that belongs to the whole (a share of customers): at most 1, None without a whole."""
    value = ratio(part, whole)
    return None if value is None else min(value, 1.0)


def money_ratio(numerator: Decimal, denominator, currency: str | None = None) -> Decimal | None:
    """Money divided by a count or by money, rounded half-up once: to the currency's minor unit when it is given
    (1.235 KWD, 1,235 JPY), else to the cent."""
    if not denominator:
        return None
    value = Decimal(numerator) / Decimal(denominator)
    if currency:
        return quantize(value, currency)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def change(current, previous) -> float | None:
    """Relative change against the previous period (0.25 = +25%), None when there was nothing before."""
    if current is None or previous is None or previous == 0:
        return None
    return (float(current) - float(previous)) / abs(float(previous))


@dataclass(frozen=True)
class ZTest:
    rate_a: float
    rate_b: float
    lift: float | None  # (rate_b - rate_a) / rate_a
    z: float
    p_value: float


# Below this many trials in an arm, or this many successes in the pair, the normal approximation is not trusted.
MIN_TRIALS = 100
MIN_SUCCESSES = 10


def two_proportion_z_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest | None:
    """Pooled two-proportion z-test (two-sided). None when either arm has no trials, when successes are not a
    proportion of the trials (negative, or more successes than trials), or when the pooled rate is 0 or 1."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    if not (0 <= successes_a <= trials_a and 0 <= successes_b <= trials_b):
        return None
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    if pooled in (0, 1):
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    z = (rate_b - rate_a) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    lift = (rate_b - rate_a) / rate_a if rate_a else None
    return ZTest(rate_a=rate_a, rate_b=rate_b, lift=lift, z=z, p_value=p_value)


def enough_data(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> bool:
    return min(trials_a, trials_b) >= MIN_TRIALS and successes_a + successes_b >= MIN_SUCCESSES
