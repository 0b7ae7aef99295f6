"""KPI reads for the dashboard, the A/B results, the leaderboards and the stats API: rollups only.

Every read here is an index range scan over the rollup tables (a few hundred rows per program per year), so a
dashboard costs the same with a thousand clicks or a billion. Money stays Decimal; rates are floats.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from urllib.parse import quote_plus, urlencode

from django.db import connection
from django.db.models import Q, Sum
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from analytics import metrics
from analytics.models import DailyStats, ReferrerDailyStats, ReferrerStats, RollupState, ShopDailyStats
from analytics.services.rollup import (
    COUNT_COLUMNS,
    GOOD_REWARD_STATUSES,
    MONEY_COLUMNS,
    SHOP_COUNT_COLUMNS,
    SHOP_MONEY_COLUMNS,
)
from programs.models import Participant, Program, ProgramVariant
from referral_saas.money import format_money
from referral_saas.money import quantize as quantize_money

ZERO = Decimal("0")
DEFAULT_DAYS = 30
MAX_DAYS = 366 * 2


# --- periods ------------------------------------------------------------------------------------------------------

# The dashboards show days from EARLIEST to a year after the shop's today: older or later dates are typing mistakes
# (and date arithmetic on year 1 or 9999 overflows), so they are moved into that range with a message.
EARLIEST = datetime.date(2000, 1, 1)
FUTURE_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: datetime.date
    end: datetime.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(_days_before(self.start, self.days), _days_before(self.start, 1))

    def dates(self) -> list[datetime.date]:
        return [self.start + datetime.timedelta(days=i) for i in range(self.days)]

    def bounds(self, tz: str) -> tuple[datetime.datetime, datetime.datetime]:
        """The period as [start, end) instants in the merchant's time zone (for links to the raw lists)."""
        zone = zoneinfo.ZoneInfo(tz)
        lo = datetime.datetime.combine(self.start, datetime.time.min, tzinfo=zone)
        hi = datetime.datetime.combine(self.end + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
        return lo, hi


def _days_before(day: datetime.date, days: int) -> datetime.date:
    """`day` minus `days`, or the first day Python knows (instead of an OverflowError)."""
    try:
        return day - datetime.timedelta(days=days)
    except OverflowError:
        return datetime.date.min


def merchant_today(merchant) -> datetime.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(merchant.timezone)).date()


def latest_day(merchant) -> datetime.date:
    return merchant_today(merchant) + datetime.timedelta(days=FUTURE_DAYS)


def _parse_date(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def parse_period(params, *, merchant, prefix: str = "", default_days: int = DEFAULT_DAYS) -> tuple[Period, list[str]]:
    """The period a dashboard shows, from `from` / `to` (YYYY-MM-DD), and what was changed in what was asked.

    A missing date is the default (the last `default_days` days up to `to`, or up to today); a date that is not one
    is left out; dates before EARLIEST or more than a year ahead are moved into that range; `from` after `to` are
    swapped; a period longer than MAX_DAYS keeps its last MAX_DAYS days.
    """
    today, earliest, latest = merchant_today(merchant), EARLIEST, latest_day(merchant)
    notes = []
    raw = {name: params.get(f"{prefix}{name}") for name in ("from", "to")}
    parsed = {name: _parse_date(value) for name, value in raw.items()}
    if any(value and parsed[name] is None for name, value in raw.items()):
        notes.append(_("A date was not in the form YYYY-MM-DD; it was left out."))
    if any(day is not None and not earliest <= day <= latest for day in parsed.values()):
        notes.append(
            _("Dates go from %(earliest)s to %(latest)s; a date outside that range was moved into it.")
            % {"earliest": earliest.isoformat(), "latest": latest.isoformat()}
        )
    start, end = (None if day is None else min(max(day, earliest), latest) for day in parsed.values())
    end = end or today
    start = start or max(_days_before(end, default_days - 1), earliest)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        start = end - datetime.timedelta(days=MAX_DAYS - 1)
        notes.append(_("A period is at most %(n)s days; the last %(n)s days are shown.") % {"n": MAX_DAYS})
    return Period(start, end), notes


# --- sums over rollups ----------------------------------------------------------------------------------------------


def _daily_scope(*, merchant, livemode: bool, programs, variant=None):
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
        totals["rewards_cost"] = (
            totals["cost_pending"] + totals["cost_approved"] + totals["cost_issued"] + totals["cost_redeemed"]
        )
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


def _json_totals(queryset) -> tuple[dict[str, int], dict[int, int]]:
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
        _daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant)
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
            cost_pending=Sum("cost_pending"),
            cost_approved=Sum("cost_approved"),
            cost_issued=Sum("cost_issued"),
            cost_redeemed=Sum("cost_redeemed"),
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
                "rewards_cost": sum(
                    (row.get(c) or ZERO for c in ("cost_pending", "cost_approved", "cost_issued", "cost_redeemed")),
                    ZERO,
                ),
            }
        )
    return series


# --- formatting -------------------------------------------------------------------------------------------------------


def _exact(value) -> Decimal:
    """A float's value without its binary noise (0.09 / 0.08 - 1 is 0.12499999999999978: 12.5%, to round as such)."""
    return Decimal(str(round(value, 12))) if isinstance(value, float) else Decimal(value)


def _percent(value: float, digits: int) -> Decimal:
    """A ratio as a percentage rounded half-up to `digits` (0.2888 -> 28.9); never -0 (number_format would cut
    the float's decimals off, not round them)."""
    percent = (_exact(value) * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return abs(percent) if percent == 0 else percent


def format_percent(value: float | None, digits: int = 1) -> str | None:
    if value is None:
        return None
    return f"{number_format(_percent(value, digits), decimal_pos=digits)}%"


def format_decimal(value: float | None, digits: int = 1) -> str | None:
    """A number rounded half-up to `digits` decimals in the active language (2.667 -> "2.7"; number_format alone
    would cut it to 2.6)."""
    if value is None:
        return None
    rounded = _exact(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return number_format(abs(rounded) if rounded == 0 else rounded, decimal_pos=digits)


def format_number(value) -> str:
    return number_format(value, force_grouping=True)


def format_duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 3600:
        minutes = max(1, round(seconds / 60))
        return ngettext("about %(n)s minute", "about %(n)s minutes", minutes) % {"n": minutes}
    if seconds < 2 * 86400:
        return _("about %(n)s hours") % {"n": format_decimal(seconds / 3600)}
    return _("about %(n)s days") % {"n": format_decimal(seconds / 86400)}


# --- cards ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: str | None
    hint: str
    change: float | None = None  # against the previous period (0.1 = +10%)
    link: str | None = None
    detail: str | None = None
    lower_is_better: bool = False

    @property
    def change_text(self) -> str | None:
        if self.change is None:
            return None
        if _percent(self.change, 0) == 0:
            return "±0%"
        return f"{'+' if self.change > 0 else ''}{format_percent(self.change, 0)}"

    @property
    def change_is_good(self) -> bool | None:
        if self.change is None or _percent(self.change, 0) == 0:
            return None
        return (self.change < 0) if self.lower_is_better else (self.change > 0)


@functools.lru_cache(maxsize=64)
def _changelist_path(name: str, prefix: str) -> str | None:
    try:
        return reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return None


@functools.lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    return quote_plus(value)


def _admin_list(name: str, **params) -> str | None:
    """An admin changelist URL with a query string. A year's page builds about two thousand of these: the path
    and the quoting of the parameters that repeat (every key, the program, mode and variant) are cached."""
    url = _changelist_path(name, get_script_prefix())
    if url is None:
        return None
    query = "&".join(f"{_quoted(k)}={_quoted(str(v))}" for k, v in params.items() if v is not None)
    return f"{url}?{query}" if query else url


# Statuses as the rollup counts them: a sign-up is a referral that is not rejected, a reward costs when it is in good
# standing.
SIGNUP_STATUSES = "clicked,signed_up,converted"
GOOD_REWARDS = ",".join(GOOD_REWARD_STATUSES)


@dataclass(frozen=True)
class Links:
    """The admin lists behind the numbers, filtered like the numbers: program, period, live or test mode, variant.

    Each list counts what its number counts (the dashboard tests follow every link and compare): clicks without
    bots, sign-ups without rejected referrals, orders that are attributed, rewards in good standing. `ever` keeps
    only the period's end (numbers "since the start"); `currency` narrows the home page's lists to the programs in
    the shop's currency where the list can say so.
    """

    program: Program | None
    period: Period
    tz: str
    livemode: bool
    variant: ProgramVariant | None = None
    currency: str | None = None
    ever: bool = False
    dated: bool = True  # False: no time range (the part of a URL that every day shares)

    def day(self, day: datetime.date) -> Links:
        return replace(self, period=Period(day, day), ever=False)

    def days(self) -> list[dict]:
        """Per day of the period, the lists behind the day-by-day table: {"clicks", "signups", "orders",
        "rewards_cost"}. A year is 1,464 links: each is the shared URL plus the day's range."""
        undated = replace(self, dated=False)
        shared = {
            "clicks": (undated.clicks(), "occurred_at"),
            "signups": (undated.signups(), "created_at"),
            "orders": (undated.orders(), "occurred_at"),
            "rewards_cost": (undated.rewards_cost(), "created_at"),
        }
        result = []
        for day in self.period.dates():
            lo, hi = (_quoted(moment.isoformat()) for moment in Period(day, day).bounds(self.tz))
            result.append(
                {
                    name: None if url is None else f"{url}&{field_name}__gte={lo}&{field_name}__lt={hi}"
                    for name, (url, field_name) in shared.items()
                }
            )
        return result

    @functools.cached_property
    def _bounds(self) -> tuple[str, str]:
        lo, hi = self.period.bounds(self.tz)
        return lo.isoformat(), hi.isoformat()

    def _range(self, field_name: str) -> dict:
        if not self.dated:
            return {}
        lo, hi = self._bounds
        lower = {} if self.ever else {f"{field_name}__gte": lo}
        return {**lower, f"{field_name}__lt": hi}

    def _program(self) -> dict:
        return {"program__id__exact": self.program.pk} if self.program else {}

    def _mode(self, path: str = "livemode") -> dict:
        return {f"{path}__exact": int(self.livemode)}

    def _variant(self, path: str) -> dict:
        return {path: self.variant.pk} if self.variant else {}

    def clicks(self) -> str | None:
        return _admin_list(
            "tracking_click", **self._program(), is_bot__exact=0, **self._mode(),
            **self._variant("code__variant__id__exact"), **self._range("occurred_at"),
        )  # fmt: skip

    def participants(self) -> str | None:
        """Codes: one per participant who joined the program."""
        return _admin_list(
            "tracking_referralcode", **self._program(), **self._mode(), **self._variant("variant__id__exact"),
            **self._range("created_at"),
        )  # fmt: skip

    def people(self) -> str | None:
        """The people who joined the program (the participants list and its export), live or test."""
        return _admin_list("programs_participant", program=self.program.pk if self.program else None, **self._mode())

    def referrals(self) -> str | None:
        """Every referral opened in the period, rejected ones too (the exports)."""
        return _admin_list(
            "tracking_referral", **self._program(), **self._mode(), **self._variant("variant__id__exact"),
            **self._range("created_at"),
        )  # fmt: skip

    def signups(self, **extra) -> str | None:
        return _admin_list(
            "tracking_referral", **self._program(), status__in=SIGNUP_STATUSES, **self._mode(),
            **self._variant("variant__id__exact"), **extra, **self._range("created_at"),
        )  # fmt: skip

    def orders(self, **extra) -> str | None:
        """Attributed orders (their count, or the sum of amount - refunded)."""
        currency = {"currency__exact": self.currency} if self.currency else {}
        return _admin_list(
            "tracking_conversion", **self._program(), status__exact="attributed", **currency, **self._mode(),
            **self._variant("referral__variant__id__exact"), **extra, **self._range("occurred_at"),
        )  # fmt: skip

    def shop_orders(self) -> str | None:
        """Every order of the shop in the currency, referred or not (the before/after table)."""
        return _admin_list(
            "tracking_conversion", currency__exact=self.currency, **self._mode(), **self._range("occurred_at")
        )

    def shares(self, channel: str | None = None) -> str | None:
        return _admin_list(
            "programs_shareevent", **self._program(), channel__exact=channel, **self._mode("participant__livemode"),
            **self._variant("variant"), **self._range("created_at"),
        )  # fmt: skip

    def rewards_cost(self) -> str | None:
        """Rewards in money and in good standing (their values, less what refunds took back from used coupons, add
        up to the rewards cost)."""
        currency = {"currency__exact": self.currency} if self.currency else {}
        return _admin_list(
            "rewards_reward", **self._program(), status__in=GOOD_REWARDS, unit__exact="money", **currency,
            **self._mode(), **self._variant("variant"), **self._range("created_at"),
        )  # fmt: skip

    def rewarded(self) -> str | None:
        """First purchases of the period with a reward in good standing (one row per purchase, however many
        rewards it paid)."""
        return self.orders(is_new_customer__exact=1, rewarded="yes")

    def fraud_queue(self) -> str | None:
        """What waits for a human now (not a period's number)."""
        return _admin_list(
            "fraud_fraudassessment", decision__exact="review", **self._program(), **self._mode(),
            **self._variant("referral__variant__id__exact"),
        )  # fmt: skip


# --- the program dashboard ------------------------------------------------------------------------------------------


@dataclass
class VariantResult:
    name: str
    variant_id: int | None
    participants: int
    shared: int
    clicks: int
    new_customers: int
    revenue: Decimal
    cost: Decimal
    share_rate: float | None
    conversion_rate: float | None
    cpa: Decimal | None
    verdict: str = ""
    p_value: float | None = None
    is_baseline: bool = False
    links: dict = field(default_factory=dict)

    @property
    def share_rate_text(self) -> str:
        return format_percent(self.share_rate) or "—"

    @property
    def conversion_rate_text(self) -> str:
        return format_percent(self.conversion_rate, 2) or "—"

    currency: str = ""

    @property
    def revenue_text(self) -> str:
        return format_money(self.revenue, self.currency)

    @property
    def cpa_text(self) -> str:
        return format_money(self.cpa, self.currency) or "—"


@dataclass
class Report:
    program: Program
    period: Period
    previous: Period
    baseline: Period
    livemode: bool
    variant: ProgramVariant | None
    variants: list
    cards: list[Card]
    series: list[dict]
    funnel: list[dict]
    channels: list[dict]
    ab: list[VariantResult]
    ab_summary: str
    before_after: list[dict]
    leaderboard: list[dict]
    fraud_review: int | None
    fraud_link: str | None
    updated_at: datetime.datetime | None
    empty: str | None  # why there is nothing to show yet, and what to do
    goal: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)  # the lists the exports section opens

    def chart_data(self) -> dict:
        """What the charts draw (also shown as tables for screen readers and without JavaScript)."""
        return {
            "labels": [d["date"].isoformat() for d in self.series],
            "clicks": [d["clicks"] for d in self.series],
            "signups": [d["signups"] for d in self.series],
            "orders": [d["conversions"] for d in self.series],
            "revenue": [str(d["revenue"]) for d in self.series],
            "funnel": {"labels": [str(s["label"]) for s in self.funnel], "values": [s["value"] for s in self.funnel]},
            "channels": {
                "labels": [str(c["label"]) for c in self.channels],
                "values": [c["value"] for c in self.channels],
            },
            "text": {
                "clicks": _("Clicks"),
                "signups": _("Sign-ups"),
                "orders": _("Orders"),
                "revenue": _("Revenue (%(currency)s)") % {"currency": self.program.currency},
            },
        }


CHANNEL_LABELS = {
    "email": gettext_lazy("Email"),
    "copy": gettext_lazy("Copied link"),
    "qr": gettext_lazy("QR code"),
    "sms": gettext_lazy("Text message"),
}


def last_rollup_at(*, merchant) -> datetime.datetime | None:
    return RollupState.objects.for_merchant(merchant).values_list("last_run_at", flat=True).first()


def fraud_review_count(*, merchant, livemode: bool = True, program=None, variant=None) -> int | None:
    """Assessments waiting for a human review in this mode (None when the fraud app is not installed)."""
    from django.apps import apps

    try:
        model = apps.get_model("fraud", "FraudAssessment")
    except LookupError:
        return None
    qs = model.objects.for_merchant(merchant).filter(decision="review", livemode=livemode)
    if program is not None:
        qs = qs.filter(program=program)
    if variant is not None:
        qs = qs.filter(referral__variant=variant)
    return qs.count()


def _ab_results(
    *, merchant, livemode: bool, program: Program, period: Period, links: Links
) -> tuple[list[VariantResult], str]:
    rows = (
        DailyStats.objects.for_merchant(merchant)
        .filter(livemode=livemode, program=program, day__range=(period.start, period.end))
        .values("variant")
        .annotate(
            participants=Sum("participants_joined"),
            shared=Sum("joined_and_shared"),
            clicks=Sum("clicks"),
            new_customers=Sum("referred_new_customers"),
            revenue=Sum("referred_revenue"),
            cost_pending=Sum("cost_pending"),
            cost_approved=Sum("cost_approved"),
            cost_issued=Sum("cost_issued"),
            cost_redeemed=Sum("cost_redeemed"),
        )
    )
    by_variant = {row["variant"]: row for row in rows}
    variants = list(ProgramVariant.objects.for_merchant(merchant).filter(program=program).order_by("name"))
    if not variants:
        return [], ""
    results = []
    for variant in variants:
        row = by_variant.get(variant.pk, {})
        cost = sum(
            (row.get(c) or ZERO for c in ("cost_pending", "cost_approved", "cost_issued", "cost_redeemed")), ZERO
        )
        participants, clicks = row.get("participants") or 0, row.get("clicks") or 0
        new_customers = row.get("new_customers") or 0
        results.append(
            VariantResult(
                name=variant.name,
                variant_id=variant.pk,
                participants=participants,
                shared=row.get("shared") or 0,
                clicks=clicks,
                new_customers=new_customers,
                revenue=row.get("revenue") or ZERO,
                cost=cost,
                share_rate=metrics.ratio(row.get("shared") or 0, participants),
                conversion_rate=metrics.ratio(new_customers, clicks),
                cpa=metrics.money_ratio(cost, new_customers, program.currency),
                currency=program.currency,
                links=_variant_links(replace(links, variant=variant)),
            )
        )
    baseline = results[0]
    baseline.is_baseline = True
    verdicts = []
    for result in results[1:]:
        result.verdict, result.p_value = ab_verdict(
            baseline.name, baseline.new_customers, baseline.clicks, result.name, result.new_customers, result.clicks
        )
        verdicts.append(result.verdict)
    return results, " ".join(verdicts)


def _variant_links(links: Links) -> dict:
    return {
        "participants": links.participants(),
        "clicks": links.clicks(),
        "new_customers": links.orders(is_new_customer__exact=1),
        "revenue": links.orders(),
        "cost": links.rewards_cost(),
    }


def _p_text(p_value: float) -> str:
    """ "= 0.04", "< 0.01"; with a third decimal where two would round across the 0.05 line and contradict the
    verdict (0.0488 reads "= 0.048", never "= 0.05" next to "converts better")."""
    if p_value < 0.01:
        return "< 0.01"
    exact = Decimal(str(p_value))
    shown = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if exact < Decimal("0.05") <= shown:
        shown = exact.quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    return f"= {shown}"


def ab_verdict(name_a: str, successes_a: int, trials_a: int, name_b: str, successes_b: int, trials_b: int):
    """A plain-language verdict on B against A (conversion = first purchases per click), and the p-value.

    A rate is only compared when it is one: a variant with more first purchases than clicks (codes typed at the
    checkout bring orders without a click) has no conversion rate to test. A variant with no purchase at all against
    one with some, with enough clicks, is a result like any other (the pooled test needs purchases on one side).
    """
    names = {"a": name_a, "b": name_b}
    if successes_a > trials_a or successes_b > trials_b:
        return (
            _(
                "%(b)s against %(a)s: not enough click data to compare (more first purchases than clicks: codes "
                "typed at the checkout bring orders without a click)."
            )
            % names,
            None,
        )
    if not metrics.enough_data(successes_a, trials_a, successes_b, trials_b):
        return (
            _("%(b)s against %(a)s: not enough data yet (at least %(n)s clicks per variant and %(k)s purchases).")
            % {**names, "n": metrics.MIN_TRIALS, "k": metrics.MIN_SUCCESSES},
            None,
        )
    test = metrics.two_proportion_z_test(successes_a, trials_a, successes_b, trials_b)
    if test is None:
        return _("%(b)s against %(a)s: not enough data yet.") % names, None
    p = _p_text(test.p_value)
    significant = test.p_value < 0.05
    if test.lift is None:  # A converted nobody: no relative lift, so the two rates in words
        values = {**names, "p": p, "rate_a": format_percent(test.rate_a, 2), "rate_b": format_percent(test.rate_b, 2)}
        if significant:
            text = _("%(b)s converts better than %(a)s (%(rate_b)s against %(rate_a)s), p %(p)s.")
        else:
            text = _(
                "No clear winner yet: %(b)s converts %(rate_b)s against %(rate_a)s for %(a)s, p %(p)s "
                "(not significant)."
            )
        return text % values, test.p_value
    lift = format_percent(abs(test.lift), 0)
    if significant:
        if test.lift > 0:
            text = _("%(b)s converts %(lift)s better than %(a)s, p %(p)s.")
        else:
            text = _("%(b)s converts %(lift)s worse than %(a)s, p %(p)s.")
    else:
        text = _("No clear winner yet: %(b)s converts %(lift)s %(direction)s than %(a)s, p %(p)s (not significant).")
    direction = _("better") if test.lift > 0 else _("worse")
    return text % {**names, "lift": lift, "p": p, "direction": direction}, test.p_value


LEADERBOARD_SCAN_DAYS = 62


def _leaderboard_key(row: dict) -> tuple:
    return (-row["new_customers"], -row["signups"], -row["revenue"], row["participant"])


def _referrer_sums(*, merchant, livemode: bool, program: Program, period: Period, participants=None):
    qs = ReferrerDailyStats.objects.for_merchant(merchant).filter(
        livemode=livemode, program=program, day__range=(period.start, period.end)
    )
    if participants is not None:
        qs = qs.filter(participant__in=participants)
    return qs.values("participant").annotate(
        new_customers=Sum("new_customers"), signups=Sum("signups"), orders=Sum("orders"), revenue=Sum("revenue")
    )


def top_referrers(
    *, merchant, livemode: bool, program: Program, period: Period, limit: int = 10, links: Links | None = None
) -> list[dict]:
    """The period's best referrers: friends who bought, then friends signed up, then revenue.

    A short period sums its referrer days directly. A long one would sum most of the table, so it walks referrers
    in the order of their all-time results (ReferrerStats, indexed in that order) and stops once the tenth best
    period result beats the next referrer's all-time result: nobody further down can do better in a part of
    their history than in all of it.
    """
    if period.days <= LEADERBOARD_SCAN_DAYS:
        rows = list(
            _referrer_sums(merchant=merchant, livemode=livemode, program=program, period=period).order_by(
                "-new_customers", "-signups", "-revenue", "participant"
            )[:limit]
        )
    else:
        ranked = (
            ReferrerStats.objects.for_merchant(merchant)
            .filter(livemode=livemode, program=program)
            .order_by("-new_customers", "-signups", "participant")
            .values_list("participant", "new_customers", "signups")
        )
        best: list[dict] = []
        offset, batch = 0, 4 * limit
        while True:
            candidates = list(ranked[offset : offset + batch])
            if not candidates:
                break
            found = _referrer_sums(
                merchant=merchant, livemode=livemode, program=program, period=period,
                participants=[c[0] for c in candidates],
            )  # fmt: skip
            best = sorted([*best, *found], key=_leaderboard_key)[:limit]
            offset += batch
            batch *= 2
            _pk, next_customers, next_signups = candidates[-1]
            if len(best) >= limit and (best[-1]["new_customers"], best[-1]["signups"]) > (next_customers, next_signups):
                break
        rows = best
    rows = [dict(row) for row in rows if row["new_customers"] or row["signups"] or row["orders"]]
    people = Participant.objects.for_merchant(merchant).in_bulk([r["participant"] for r in rows])
    for rank, row in enumerate(rows, start=1):
        person = people.get(row["participant"])
        row["rank"] = rank
        row["revenue_text"] = format_money(row["revenue"] or ZERO, program.currency)
        row["name"] = str(person) if person else "?"
        row["email"] = person.email if person else None
        try:
            row["link"] = reverse("admin:programs_participant_change", args=[row["participant"]])
        except NoReverseMatch:
            row["link"] = None
        if links is not None:
            # The referrer's friends of the period (the leaderboard is not split by variant).
            mine, referrer = replace(links, variant=None), row["participant"]
            orders = mine.orders(referral__referrer__id__exact=referrer)
            row["links"] = {
                "new_customers": mine.orders(referral__referrer__id__exact=referrer, is_new_customer__exact=1),
                "signups": mine.signups(referrer__id__exact=referrer),
                "orders": orders,
                "revenue": orders,
            }
    return rows


def program_report(
    *,
    merchant,
    program: Program,
    period: Period,
    baseline: Period | None = None,
    livemode: bool = True,
    variant: ProgramVariant | None = None,
) -> Report:
    """Everything the program page shows, from the rollups."""
    programs = [program]
    currency = program.currency
    previous = period.previous()
    baseline = baseline or default_baseline(merchant=merchant, starts_on=program.starts_on, days=period.days)
    sums = daily_buckets(
        merchant=merchant,
        livemode=livemode,
        programs=programs,
        variant=variant,
        buckets={
            "now": (period.start, period.end),
            "before": (previous.start, previous.end),
            "ever": (None, period.end),
            "ever_before": (None, previous.end),
        },
    )
    now, before, ever, ever_before = sums["now"], sums["before"], sums["ever"], sums["ever_before"]
    # The budget and the goal belong to the whole program, whichever variant the page shows.
    whole = (
        ever
        if variant is None
        else daily_buckets(
            merchant=merchant, livemode=livemode, programs=programs, buckets={"ever": (None, period.end)}
        )["ever"]
    )
    in_period = _daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant).filter(
        day__range=(period.start, period.end)
    )
    channels, ttp = _json_totals(in_period)
    _prev_channels, ttp_before = _json_totals(
        _daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant).filter(
            day__range=(previous.start, previous.end)
        )
    )
    shops = shop_buckets(
        merchant=merchant,
        livemode=livemode,
        currency=currency,
        buckets={
            "now": (period.start, period.end),
            "before": (previous.start, previous.end),
            "ever": (None, period.end),
            "ever_before": (None, previous.end),
            "baseline": (baseline.start, baseline.end),
        },
    )
    shop, shop_before, shop_ever = shops["now"], shops["before"], shops["ever"]
    shop_ever_before, base_shop = shops["ever_before"], shops["baseline"]
    links = Links(program=program, period=period, tz=merchant.timezone, livemode=livemode, variant=variant)
    cards = _program_cards(
        now=now, before=before, ever=ever, ever_before=ever_before, shop=shop, shop_before=shop_before,
        shop_ever=shop_ever, shop_ever_before=shop_ever_before, ttp=ttp, ttp_before=ttp_before,
        currency=currency, program=program, links=links, whole=whole,
    )  # fmt: skip
    funnel = [
        {"label": _("Clicks"), "value": now["clicks"], "link": links.clicks()},
        {"label": _("Sign-ups"), "value": now["signups"], "link": links.signups()},
        {
            "label": _("First purchases"),
            "value": now["referred_new_customers"],
            "link": links.orders(is_new_customer__exact=1),
        },
        {"label": _("Rewarded"), "value": now["rewarded"], "link": links.rewarded()},
    ]
    top = funnel[0]["value"] or 0
    for step in funnel:
        step["share"] = metrics.ratio(step["value"], top)
        step["share_text"] = format_percent(step["share"]) or "—"
    channel_rows = [
        {
            "key": key,
            "label": CHANNEL_LABELS.get(key, key.capitalize() if key != "x" else "X"),
            "value": value,
            "link": links.shares(channel=key),
        }
        for key, value in sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    ab, ab_summary = _ab_results(merchant=merchant, livemode=livemode, program=program, period=period, links=links)
    shop_links = replace(links, program=None, variant=None, currency=currency)
    before_after = _before_after(
        base_shop, shop, currency, before=replace(shop_links, period=baseline), after=shop_links
    )
    fraud = fraud_review_count(merchant=merchant, livemode=livemode, program=program, variant=variant)
    series = daily_series(merchant=merchant, livemode=livemode, programs=programs, period=period, variant=variant)
    for day, day_links in zip(series, links.days(), strict=True):
        day["revenue_text"] = format_money(day["revenue"], currency)
        day["rewards_cost_text"] = format_money(day["rewards_cost"], currency)
        day["links"] = day_links
    empty = None
    if ever["participants_joined"] == 0 and ever["clicks"] == 0:
        empty = "no_participants"
    elif ever["clicks"] == 0:
        empty = "no_clicks"
    goal = {
        "customers": program.goal_customers,
        "customers_done": whole["referred_new_customers"],
        "customers_share": metrics.ratio(whole["referred_new_customers"], program.goal_customers),
        "revenue": program.goal_revenue,
        "revenue_done": whole["referred_revenue"],
        "revenue_share": metrics.ratio(whole["referred_revenue"], program.goal_revenue),
        "budget": program.budget,
        "budget_used": whole["rewards_cost"],
        "budget_share": metrics.ratio(whole["rewards_cost"], program.budget),
    }
    return Report(
        program=program,
        period=period,
        previous=previous,
        baseline=baseline,
        livemode=livemode,
        variant=variant,
        variants=list(ProgramVariant.objects.for_merchant(merchant).filter(program=program).order_by("name")),
        cards=cards,
        series=series,
        funnel=funnel,
        channels=channel_rows,
        ab=ab,
        ab_summary=ab_summary,
        before_after=before_after,
        leaderboard=top_referrers(merchant=merchant, livemode=livemode, program=program, period=period, links=links),
        fraud_review=fraud,
        fraud_link=links.fraud_queue(),
        updated_at=last_rollup_at(merchant=merchant),
        empty=empty,
        goal=goal,
        lists={"orders": links.orders(), "referrals": links.referrals(), "participants": links.people()},
    )


def default_baseline(*, merchant, starts_on: datetime.date, days: int) -> Period:
    """The before/after table's default baseline: `days` days before the program started (inside the range the
    dashboards show, whatever the program's start date)."""
    end = min(max(_days_before(starts_on, 1), EARLIEST), latest_day(merchant))
    return Period(max(_days_before(end, days - 1), EARLIEST), end)


def _before_after(base: dict, now: dict, currency: str, *, before: Links, after: Links) -> list[dict]:
    """The shop's numbers in the baseline against the period. Orders and sales link to the shop's orders (new
    customers are people, first seen in a period, which no list shows; an average has no list of its own)."""
    aov_base = metrics.money_ratio(base["revenue"], base["orders"], currency)
    aov_now = metrics.money_ratio(now["revenue"], now["orders"], currency)
    orders_before, orders_after = before.shop_orders(), after.shop_orders()
    return [
        {
            "label": _("New customers"),
            "before": format_number(base["new_customers"]),
            "after": format_number(now["new_customers"]),
            "change": format_percent(metrics.change(now["new_customers"], base["new_customers"]), 0),
        },
        {
            "label": _("Sales"),
            "before": format_money(base["revenue"], currency),
            "after": format_money(now["revenue"], currency),
            "change": format_percent(metrics.change(now["revenue"], base["revenue"]), 0),
            "before_link": orders_before,
            "after_link": orders_after,
        },
        {
            "label": _("Orders"),
            "before": format_number(base["orders"]),
            "after": format_number(now["orders"]),
            "change": format_percent(metrics.change(now["orders"], base["orders"]), 0),
            "before_link": orders_before,
            "after_link": orders_after,
        },
        {
            "label": _("Average order value"),
            "before": format_money(aov_base, currency) or "—",
            "after": format_money(aov_now, currency) or "—",
            "change": format_percent(metrics.change(aov_now, aov_base), 0),
        },
    ]


def _program_cards(
    *, now, before, ever, ever_before, shop, shop_before, shop_ever, shop_ever_before, ttp, ttp_before, currency,
    program, links, whole,
) -> list[Card]:  # fmt: skip
    """`whole` is the program's all-time sums without the variant filter: the budget and the goal are the
    program's."""
    no_data = _("No data in this period yet.")

    def money(value):
        return format_money(value, currency)

    def aov_other(s):
        return metrics.money_ratio(
            s["revenue"] - s["attributed_revenue"], s["orders"] - s["attributed_orders"], currency
        )

    def ltv(revenue, customers):
        return metrics.money_ratio(revenue, customers, currency)

    referral_share = metrics.ratio(now["referred_revenue"], shop["revenue"])
    roi = metrics.ratio(now["referred_revenue"] - now["rewards_cost"], now["rewards_cost"])
    roi_before = metrics.ratio(before["referred_revenue"] - before["rewards_cost"], before["rewards_cost"])
    cpa = metrics.money_ratio(now["rewards_cost"], now["referred_new_customers"], currency)
    cpa_before = metrics.money_ratio(before["rewards_cost"], before["referred_new_customers"], currency)
    conversion = metrics.ratio(now["attributed_orders"], now["clicks"])
    conversion_before = metrics.ratio(before["attributed_orders"], before["clicks"])
    click_through = metrics.ratio(now["clicks"], ever["first_shares"])
    click_through_before = metrics.ratio(before["clicks"], ever_before["first_shares"])
    participation = metrics.ratio(ever["participants_joined"], shop_ever["new_customers"])
    participation_before = metrics.ratio(ever_before["participants_joined"], shop_ever_before["new_customers"])
    aov_ref = metrics.money_ratio(now["referred_revenue"], now["attributed_orders"], currency)
    aov_ref_before = metrics.money_ratio(before["referred_revenue"], before["attributed_orders"], currency)
    ltv_ref = ltv(now["cohort_revenue"], now["cohort_customers"])
    ltv_other = ltv(shop["other_cohort_revenue"], shop["other_cohort_customers"])
    repeat_ref = metrics.ratio(now["cohort_repeaters"], now["cohort_customers"])
    repeat_other = metrics.ratio(shop["other_cohort_repeaters"], shop["other_cohort_customers"])
    median = metrics.histogram_median(ttp)
    median_before = metrics.histogram_median(ttp_before)
    budget_share = metrics.ratio(whole["rewards_cost"], program.budget)
    goal_share = metrics.ratio(whole["referred_new_customers"], program.goal_customers)
    goal_revenue_share = metrics.ratio(whole["referred_revenue"], program.goal_revenue)
    since_start = replace(links, ever=True)
    whole_since_start = replace(since_start, variant=None)

    cards = [
        Card(
            "referred_customers", _("New customers from referrals"), format_number(now["referred_new_customers"]),
            no_data, metrics.change(now["referred_new_customers"], before["referred_new_customers"]),
            links.orders(is_new_customer__exact=1),
        ),
        Card(
            "referral_revenue", _("Referral revenue"), money(now["referred_revenue"]), no_data,
            metrics.change(now["referred_revenue"], before["referred_revenue"]), links.orders(),
            _("%(share)s of all sales (%(total)s)")
            % {"share": format_percent(referral_share) or "—", "total": money(shop["revenue"])},
        ),
        Card(
            "conversion_rate", _("Conversion rate (clicks → orders)"), format_percent(conversion, 2),
            _("No clicks in this period yet."), metrics.change(conversion, conversion_before), links.orders(),
            _("%(orders)s orders from %(clicks)s clicks")
            % {"orders": format_number(now["attributed_orders"]), "clicks": format_number(now["clicks"])},
        ),
        Card(
            "click_through", _("Clicks per participant who shared"),
            format_decimal(click_through),
            _("Nobody has shared yet."), metrics.change(click_through, click_through_before), links.clicks(),
            _("%(n)s participants have shared") % {"n": format_number(ever["first_shares"])},
        ),
        Card(
            "participation", _("Participation rate"), format_percent(participation),
            _("No customers or participants yet."), metrics.change(participation, participation_before),
            since_start.participants(),
            _("%(p)s participants / %(c)s customers")
            % {"p": format_number(ever["participants_joined"]), "c": format_number(shop_ever["new_customers"])},
        ),
        Card(
            "aov", _("Average order value, referred"), money(aov_ref), no_data, metrics.change(aov_ref, aov_ref_before),
            links.orders(),
            _("Not referred: %(aov)s") % {"aov": money(aov_other(shop)) or "—"},
        ),
        Card(
            "ltv", _("Lifetime value, referred customers"), money(ltv_ref),
            _("No referred customers acquired in this period yet."), None, links.orders(is_new_customer__exact=1),
            _("Other customers: %(ltv)s · repeat purchase %(ref)s vs %(other)s")
            % {
                "ltv": money(ltv_other) or "—",
                "ref": format_percent(repeat_ref, 0) or "—",
                "other": format_percent(repeat_other, 0) or "—",
            },
        ),
        Card(
            "time_to_purchase", _("Median time from click to first purchase"), format_duration(median),
            _("No first purchases in this period yet."), metrics.change(median, median_before),
            links.orders(is_new_customer__exact=1), lower_is_better=True,
        ),
        Card(
            "rewards_cost", _("Rewards cost"), money(now["rewards_cost"]), no_data,
            metrics.change(now["rewards_cost"], before["rewards_cost"]), links.rewards_cost(),
            _("Pending %(p)s · issued %(i)s")
            % {
                "p": money(now["cost_pending"] + now["cost_approved"]),
                "i": money(now["cost_issued"] + now["cost_redeemed"]),
            },
            lower_is_better=True,
        ),
        Card(
            "cpa", _("Cost per acquired customer"), money(cpa), no_data, metrics.change(cpa, cpa_before),
            links.rewards_cost(),
            lower_is_better=True,
        ),
        Card(
            "roi", _("ROI"), format_percent(roi, 0), _("No rewards cost in this period yet."),
            metrics.change(roi, roi_before), links.orders(), _("(referral revenue - rewards cost) / rewards cost"),
        ),
        Card(
            "budget", _("Budget used"), format_percent(budget_share, 0),
            _("No budget set for this program."), None, whole_since_start.rewards_cost(),
            _("%(used)s of %(budget)s since the start")
            % {"used": money(whole["rewards_cost"]), "budget": money(program.budget) or "—"},
        ),
        Card(
            "goal", _("Progress towards the goal"),
            format_percent(goal_share if goal_share is not None else goal_revenue_share, 0),
            _("No goal set for this program."), None,
            whole_since_start.orders(is_new_customer__exact=1) if program.goal_customers
            else whole_since_start.orders(),
            _goal_detail(program, whole, currency),
        ),
    ]  # fmt: skip
    return cards


def _goal_detail(program: Program, ever: dict, currency: str) -> str:
    parts = []
    if program.goal_customers:
        parts.append(
            _("%(done)s of %(goal)s customers")
            % {"done": format_number(ever["referred_new_customers"]), "goal": format_number(program.goal_customers)}
        )
    if program.goal_revenue:
        parts.append(
            _("%(done)s of %(goal)s revenue")
            % {
                "done": format_money(ever["referred_revenue"], currency),
                "goal": format_money(program.goal_revenue, currency),
            }
        )
    return " · ".join(parts)


# --- the merchant's home page -----------------------------------------------------------------------------------------


def dashboard_url(program: Program, *, period: Period, livemode: bool) -> str:
    """A program's page showing the same period and mode as the page that links to it."""
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    if not livemode:
        query["mode"] = "test"
    return f"{reverse('admin:analytics_program_dashboard', args=[program.pk])}?{urlencode(query)}"


def _distinct_participants(*, merchant, livemode: bool, programs: list[Program], until: datetime.date) -> int:
    return (
        ReferrerStats.objects.for_merchant(merchant)
        .filter(livemode=livemode, program__in=programs, joined_day__lte=until)
        .values("participant_id")
        .distinct()
        .count()
    )


def merchant_overview(*, merchant, period: Period | None = None, livemode: bool = True) -> dict:
    """The admin home page: KPI cards over all programs in the shop's currency, one line per program, and what to
    do next when there is nothing to show."""
    period = period or Period(
        merchant_today(merchant) - datetime.timedelta(days=DEFAULT_DAYS - 1), merchant_today(merchant)
    )
    previous = period.previous()
    all_programs = list(Program.objects.for_merchant(merchant).order_by("-created_at"))
    currency = merchant.default_currency
    programs = [p for p in all_programs if p.currency == currency]
    # The cards add up the programs in the shop's currency: their lists say so where they can (orders, rewards).
    links = Links(program=None, period=period, tz=merchant.timezone, livemode=livemode, currency=currency)
    empty = _("No data yet: create a program and share its link.")
    buckets = {"now": (period.start, period.end), "before": (previous.start, previous.end), "ever": (None, period.end)}
    sums = daily_buckets(merchant=merchant, livemode=livemode, programs=programs, buckets=buckets)
    now, before, ever = sums["now"], sums["before"], sums["ever"]
    shops = shop_buckets(merchant=merchant, livemode=livemode, currency=currency, buckets=buckets)
    shop, shop_ever = shops["now"], shops["ever"]
    has_data = bool(ever["clicks"] or ever["participants_joined"] or shop_ever["orders"])

    def card(key, label, value, change, link, detail=None, lower_is_better=False):
        return Card(key, label, value if has_data else None, empty, change if has_data else None, link, detail,
                    lower_is_better)  # fmt: skip

    roi = metrics.ratio(now["referred_revenue"] - now["rewards_cost"], now["rewards_cost"])
    roi_before = metrics.ratio(before["referred_revenue"] - before["rewards_cost"], before["rewards_cost"])
    conversion = metrics.ratio(now["attributed_orders"], now["clicks"])
    # A person in several programs is one participant of the shop.
    participants = (
        ever["participants_joined"]
        if len(programs) <= 1
        else _distinct_participants(merchant=merchant, livemode=livemode, programs=programs, until=period.end)
    )
    participation = metrics.ratio(participants, shop_ever["new_customers"])
    cards = [
        card("referred_customers", _("New customers from referrals"), format_number(now["referred_new_customers"]),
             metrics.change(now["referred_new_customers"], before["referred_new_customers"]),
             links.orders(is_new_customer__exact=1)),
        card("referral_revenue", _("Referral revenue"), format_money(now["referred_revenue"], currency),
             metrics.change(now["referred_revenue"], before["referred_revenue"]), links.orders(),
             _("%(share)s of all sales")
             % {"share": format_percent(metrics.ratio(now["referred_revenue"], shop["revenue"])) or "—"}),
        card("conversion_rate", _("Conversion rate (clicks → orders)"), format_percent(conversion, 2),
             metrics.change(conversion, metrics.ratio(before["attributed_orders"], before["clicks"])), links.orders(),
             _("%(orders)s orders from %(clicks)s clicks")
             % {"orders": format_number(now["attributed_orders"]), "clicks": format_number(now["clicks"])}),
        card("rewards_cost", _("Rewards cost"), format_money(now["rewards_cost"], currency),
             metrics.change(now["rewards_cost"], before["rewards_cost"]), links.rewards_cost(), lower_is_better=True),
        card("roi", _("ROI"), format_percent(roi, 0), metrics.change(roi, roi_before), links.orders()),
        card("participation", _("Participation rate"), format_percent(participation), None,
             replace(links, ever=True, currency=None).participants(),
             _("%(p)s participants / %(c)s customers")
             % {"p": format_number(participants), "c": format_number(shop_ever["new_customers"])}),
    ]  # fmt: skip
    per_program = (
        DailyStats.objects.for_merchant(merchant)
        .filter(livemode=livemode, day__range=(period.start, period.end))
        .values("program")
        .annotate(
            clicks=Sum("clicks"),
            signups=Sum("signups"),
            new_customers=Sum("referred_new_customers"),
            revenue=Sum("referred_revenue"),
            cost=Sum("cost_pending") + Sum("cost_approved") + Sum("cost_issued") + Sum("cost_redeemed"),
        )
    )
    by_program = {row["program"]: row for row in per_program}
    rows = []
    for program in all_programs:
        row = by_program.get(program.pk, {})
        own = replace(links, program=program, currency=None)
        rows.append(
            {
                "program": program,
                "url": dashboard_url(program, period=period, livemode=livemode),
                "clicks": row.get("clicks") or 0,
                "signups": row.get("signups") or 0,
                "new_customers": row.get("new_customers") or 0,
                "revenue": format_money(row.get("revenue") or ZERO, program.currency),
                "cost": format_money(row.get("cost") or ZERO, program.currency),
                "links": {
                    "clicks": own.clicks(),
                    "signups": own.signups(),
                    "new_customers": own.orders(is_new_customer__exact=1),
                    "revenue": own.orders(),
                    "cost": own.rewards_cost(),
                },
            }
        )
    if not all_programs:
        next_step = "no_program"
    elif not (ever["clicks"] or any(r["clicks"] for r in rows)):
        next_step = "no_clicks"
    else:
        next_step = None
    return {
        "period": period,
        "cards": cards,
        "programs": rows,
        "next_step": next_step,
        "fraud_review": fraud_review_count(merchant=merchant, livemode=livemode),
        "fraud_link": links.fraud_queue(),
        "updated_at": last_rollup_at(merchant=merchant),
        "currency": currency,
        "other_currencies": sorted({p.currency for p in all_programs} - {currency}),
    }


# --- the stats API --------------------------------------------------------------------------------------------------


def program_stats(*, merchant, livemode: bool, program: Program, period: Period) -> dict:
    """GET /api/v1/stats: the period's totals and one entry per day, from the rollups. Amounts have the currency's
    decimals (JPY none, PLN two)."""
    totals = daily_totals(merchant=merchant, livemode=livemode, programs=[program], period=period)
    currency = program.currency

    def amount(value: Decimal) -> Decimal:
        return quantize_money(value, currency)

    days = daily_series(merchant=merchant, livemode=livemode, programs=[program], period=period)
    for day in days:
        day["revenue"], day["rewards_cost"] = amount(day["revenue"]), amount(day["rewards_cost"])
    return {
        "program": program.slug,
        "currency": program.currency,
        "from": period.start,
        "to": period.end,
        "totals": {
            "clicks": totals["clicks"],
            "unique_visitors": totals["unique_visitors"],
            "participants_joined": totals["participants_joined"],
            "shares": totals["shares"],
            "invites_sent": totals["invites_sent"],
            "signups": totals["signups"],
            "conversions": totals["attributed_orders"],
            "new_customers": totals["referred_new_customers"],
            "revenue": amount(totals["referred_revenue"]),
            "refunds": amount(totals["referred_refunds"]),
            "rewards_cost": amount(totals["rewards_cost"]),
            "conversion_rate": metrics.ratio(totals["attributed_orders"], totals["clicks"]),
        },
        "days": days,
    }


# --- the portal leaderboard -------------------------------------------------------------------------------------------


def portal_leaderboard(*, program: Program, participant: Participant, limit: int = 10) -> dict:
    """The program's top referrers (first name and initial only), the participant's rank and milestone progress.

    Ranked by friends who bought (then friends signed up), from the all-time rollup; blocked and erased people are
    left out. The participant's own milestone progress is counted live, the way rewards count it.
    """
    from rewards.selectors import milestone_progress, rule_in_words

    merchant = program.merchant
    scope = ReferrerStats.objects.for_merchant(merchant).filter(livemode=participant.livemode, program=program)
    board = _cached_board(program=program, livemode=participant.livemode, limit=limit)
    entries = [{**entry, "is_me": entry["participant_id"] == participant.pk} for entry in board["entries"]]
    mine = scope.filter(participant=participant).first()
    my_rank = None
    if mine is not None and (mine.new_customers or mine.signups):
        better = (
            scope.filter(participant__status=Participant.Status.ACTIVE)
            .filter(
                Q(new_customers__gt=mine.new_customers) | Q(new_customers=mine.new_customers, signups__gt=mine.signups)
            )
            .count()
        )
        my_rank = better + 1
    # Milestones as the rewards engine counts them (friends who bought and passed fraud scoring), live.
    # Only the milestones this participant can still earn (their variant, offers not ended) or already reached.
    progress = milestone_progress(program=program, participant=participant)
    successful = progress.successful if progress else 0
    reached, upcoming = (progress.reached, progress.upcoming) if progress else ([], [])
    steps = [
        {"target": rule.milestone, "name": rule_in_words(rule, program.currency), "reached": rule in reached}
        for rule in [*reached, *upcoming]
    ]
    following = next((step for step in steps if not step["reached"]), None)
    return {
        "entries": entries,
        "my_rank": my_rank,
        "ranked": board["ranked"],
        "my_new_customers": mine.new_customers if mine else 0,
        "my_signups": mine.signups if mine else 0,
        "successful": successful,
        "milestones": steps,
        "next_milestone": following,
        "to_next": (following["target"] - successful) if following else None,
        "progress": metrics.ratio(successful, following["target"]) if following else None,
        "updated_at": last_rollup_at(merchant=merchant),
    }


BOARD_TTL = 60


def _cached_board(*, program: Program, livemode: bool, limit: int) -> dict:
    """The top of the board and how many are on it: the same for every participant, so computed once a minute."""
    from django.core.cache import cache

    from programs.selectors import public_names_version

    version = public_names_version(merchant_id=program.merchant_id)
    key = f"analytics:board:{program.pk}:{int(livemode)}:{limit}:{version}"
    board = cache.get(key)
    if board is not None:
        return board
    ranked = (
        ReferrerStats.objects.for_merchant(program.merchant)
        .filter(livemode=livemode, program=program, participant__status=Participant.Status.ACTIVE)
        .filter(Q(new_customers__gt=0) | Q(signups__gt=0))
    )
    top = list(ranked.select_related("participant").order_by("-new_customers", "-signups", "participant_id")[:limit])
    entries = []
    # Competition ranking: equal scores share a rank ("1, 2, 2, 4").
    previous_score, rank = None, 0
    for position, row in enumerate(top, start=1):
        score = (row.new_customers, row.signups)
        if score != previous_score:
            rank, previous_score = position, score
        entries.append(
            {
                "rank": rank,
                "participant_id": row.participant_id,
                # Empty for someone without a name: the page says "Referrer #<rank>" in the visitor's language.
                "name": row.participant.public_name,
                "new_customers": row.new_customers,
                "signups": row.signups,
            }
        )
    board = {"entries": entries, "ranked": ranked.count()}
    cache.set(key, board, BOARD_TTL)
    return board
