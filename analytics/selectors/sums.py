"""Sums over the rollups: several day ranges in one scan, per-day series, and when the rollup last ran.

Every read here is an index range scan over the rollup tables (a few hundred rows per program per year), so a
dashboard costs the same with a thousand clicks or a billion. Money stays Decimal; rates are floats.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from analytics import metrics
from analytics.models import COST_COLUMNS, DailyStats, ReferrerStats, RollupState, ShopDailyStats
from analytics.selectors.periods import Period
from analytics.services.rollup import (
    COUNT_COLUMNS,
    MONEY_COLUMNS,
    SHOP_COUNT_COLUMNS,
    SHOP_MONEY_COLUMNS,
)

ZERO = Decimal("0")


def cost_sums() -> dict:
    """The annotations that sum each cost column of the rollups (COST_COLUMNS)."""
    return {column: Sum(column) for column in COST_COLUMNS}


def rewards_cost(row: dict) -> Decimal:
    """A program's rewards cost from a row of sums: the rewards in good standing (analytics.models.COST_COLUMNS)."""
    return sum((row.get(column) or ZERO for column in COST_COLUMNS), ZERO)


def daily_scope(*, merchant, livemode: bool, programs, variant=None):
    qs = DailyStats.objects.for_merchant(merchant).filter(livemode=livemode, program__in=programs)
    if variant is not None:
        qs = qs.filter(variant=variant)
    return qs


def _bucket_sums(table: str, scope: str, params: dict, buckets: dict, columns: list[str], money: list[str]) -> dict:
    """Sums of `columns` + `money` for several day ranges at once: {bucket: {column: total}}, in one scan.

    A bucket is (first day or None for "from the beginning", last day). Money comes back as Decimal.
    """
    parts, values = [], dict(params)
    for i, (start, end) in enumerate(buckets.values()):
        condition = f"day <= %(end{i})s" + (f" AND day >= %(start{i})s" if start else "")
        values[f"end{i}"], values[f"start{i}"] = end, start
        parts += [f"COALESCE(sum({c}) FILTER (WHERE {condition}), 0)" for c in columns + money]
    values["last_day"] = max(end for _start, end in buckets.values())
    sql = f"SELECT {', '.join(parts)} FROM {table} WHERE {scope} AND day <= %(last_day)s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    width = len(columns) + len(money)
    result = {}
    for i, name in enumerate(buckets):
        chunk = row[i * width : (i + 1) * width]
        totals = dict(zip(columns + money, chunk, strict=True))
        for c in columns:
            totals[c] = int(totals[c])
        for c in money:
            totals[c] = Decimal(totals[c])
        result[name] = totals
    return result


def referrer_count(*, merchant, livemode: bool, programs, until: datetime.date, variant=None) -> int:
    """People who joined the programs as referrers by `until`: distinct participants with a referral code, except the
    friends enrolled automatically when they were referred (they count once they share their own link)."""
    scope = ReferrerStats.objects.for_merchant(merchant).filter(
        livemode=livemode, program__in=programs, joined_day__lte=until
    )
    if variant is not None:
        scope = scope.filter(variant=variant)
    referrers = scope.filter(Q(participant__referred_by__isnull=True) | Q(first_shared_day__lte=until))
    return referrers.values("participant_id").distinct().count()


def daily_buckets(*, merchant, livemode: bool, programs, buckets: dict, variant=None) -> dict:
    """DailyStats sums (money Decimal, plus rewards_cost) of some programs for several day ranges, in one query."""
    scope = "merchant_id = %(m)s AND livemode = %(live)s AND program_id = ANY(%(programs)s)"
    params = {"m": merchant.pk, "live": livemode, "programs": [p.pk for p in programs]}
    if variant is not None:
        scope += " AND variant_id = %(variant)s"
        params["variant"] = variant.pk
    if not programs:
        empty = {c: 0 for c in COUNT_COLUMNS} | {c: ZERO for c in MONEY_COLUMNS}
        result = {name: dict(empty) for name in buckets}
    else:
        result = _bucket_sums(DailyStats._meta.db_table, scope, params, buckets, COUNT_COLUMNS, MONEY_COLUMNS)
    for totals in result.values():
        totals["rewards_cost"] = rewards_cost(totals)
    return result


def shop_buckets(*, merchant, livemode: bool, currency: str, buckets: dict) -> dict:
    scope = "merchant_id = %(m)s AND livemode = %(live)s AND currency = %(currency)s"
    params = {"m": merchant.pk, "live": livemode, "currency": currency}
    return _bucket_sums(ShopDailyStats._meta.db_table, scope, params, buckets, SHOP_COUNT_COLUMNS, SHOP_MONEY_COLUMNS)


def daily_totals(*, merchant, livemode: bool, programs, period: Period | None, variant=None, until=None) -> dict:
    """Sums of every DailyStats number (money Decimal) for a period (or everything up to `until`)."""
    bucket = (period.start, period.end) if period is not None else (None, until)
    return daily_buckets(merchant=merchant, livemode=livemode, programs=programs, variant=variant,
                         buckets={"x": bucket})["x"]  # fmt: skip


def json_totals(queryset) -> tuple[dict[str, int], dict[int, int]]:
    channels: dict[str, int] = defaultdict(int)
    histograms = []
    for shares, ttp in queryset.values_list("shares_by_channel", "time_to_purchase"):
        for channel, n in (shares or {}).items():
            channels[channel] += int(n)
        histograms.append(ttp)
    return dict(channels), metrics.merge_histograms(histograms)


def daily_series(*, merchant, livemode: bool, programs, period: Period, variant=None) -> list[dict]:
    """One entry per day of the period (zeros for empty days): the chart and the stats API read this."""
    qs = (
        daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant)
        .filter(day__range=(period.start, period.end))
        .values("day")
        .annotate(
            clicks=Sum("clicks"),
            unique_visitors=Sum("unique_visitors"),
            participants_joined=Sum("participants_joined"),
            shares=Sum("shares"),
            signups=Sum("signups"),
            conversions=Sum("attributed_orders"),
            new_customers=Sum("referred_new_customers"),
            revenue=Sum("referred_revenue"),
            **cost_sums(),
        )
    )
    by_day = {row["day"]: row for row in qs}
    series = []
    for day in period.dates():
        row = by_day.get(day, {})
        series.append(
            {
                "date": day,
                "clicks": row.get("clicks") or 0,
                "unique_visitors": row.get("unique_visitors") or 0,
                "participants_joined": row.get("participants_joined") or 0,
                "shares": row.get("shares") or 0,
                "signups": row.get("signups") or 0,
                "conversions": row.get("conversions") or 0,
                "new_customers": row.get("new_customers") or 0,
                "revenue": row.get("revenue") or ZERO,
                "rewards_cost": rewards_cost(row),
            }
        )
    return series


def last_rollup_at(*, merchant) -> datetime.datetime | None:
    return RollupState.objects.for_merchant(merchant).values_list("last_run_at", flat=True).first()
