"""The program dashboard: cards, funnel, channels, A/B, before/after, leaderboard, goal, from the rollups."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import metrics
from analytics.selectors.abtest import VariantResult, ab_results
from analytics.selectors.formatting import Card, format_decimal, format_duration, format_number, format_percent
from analytics.selectors.leaderboard import top_referrers
from analytics.selectors.links import Links
from analytics.selectors.periods import Period, default_baseline
from analytics.selectors.sums import (
    daily_buckets,
    daily_scope,
    daily_series,
    json_totals,
    last_rollup_at,
    referrer_count,
    shop_buckets,
)
from programs.models import Program, ProgramVariant
from referral_saas.money import format_money


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
    # Before the program and before the period shown: a default baseline never overlaps the "after" it is set against.
    baseline = baseline or default_baseline(
        merchant=merchant, starts_on=min(program.starts_on, period.start), days=period.days
    )
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
    in_period = daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant).filter(
        day__range=(period.start, period.end)
    )
    channels, ttp = json_totals(in_period)
    _prev_channels, ttp_before = json_totals(
        daily_scope(merchant=merchant, livemode=livemode, programs=programs, variant=variant).filter(
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
        referrers=referrer_count(merchant=merchant, livemode=livemode, programs=programs, until=period.end,
                                 variant=variant),
        referrers_before=referrer_count(merchant=merchant, livemode=livemode, programs=programs,
                                        until=previous.end, variant=variant),
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
    ab, ab_summary = ab_results(merchant=merchant, livemode=livemode, program=program, period=period, links=links)
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
    elif ever["clicks"] == 0 and ever["attributed_orders"] == 0 and ever["signups"] == 0:
        empty = "no_clicks"  # orders and sign-ups from typed codes are activity: no "no clicks yet" beside revenue
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
    program, links, whole, referrers, referrers_before,
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
    # Referrers (not the friends enrolled by a referral) as a share of the shop's customers: at most 100%.
    participation = metrics.share(referrers, shop_ever["new_customers"])
    participation_before = metrics.share(referrers_before, shop_ever_before["new_customers"])
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
            since_start.participants(role="referrer"),
            _("%(p)s referrers / %(c)s customers")
            % {"p": format_number(referrers), "c": format_number(shop_ever["new_customers"])},
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
