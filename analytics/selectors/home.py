"""The merchant's admin home page: KPI cards over every program in the shop's currency, and one line per program."""

from __future__ import annotations

import datetime
from dataclasses import replace

from django.db.models import Sum
from django.utils.translation import gettext as _

from analytics import metrics
from analytics.models import DailyStats
from analytics.selectors.dashboard import fraud_review_count
from analytics.selectors.formatting import Card, format_number, format_percent
from analytics.selectors.links import Links, dashboard_url
from analytics.selectors.periods import DEFAULT_DAYS, Period, merchant_today
from analytics.selectors.sums import (
    ZERO,
    cost_sums,
    daily_buckets,
    last_rollup_at,
    referrer_count,
    rewards_cost,
    shop_buckets,
)
from programs.models import Program
from referral_saas.money import format_money


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
    empty = (
        _("No data yet: share your program's portal link with your customers.")
        if all_programs
        else _("No data yet: create a program and share its link.")
    )
    buckets = {"now": (period.start, period.end), "before": (previous.start, previous.end), "ever": (None, period.end)}
    sums = daily_buckets(merchant=merchant, livemode=livemode, programs=programs, buckets=buckets)
    now, before, ever = sums["now"], sums["before"], sums["ever"]
    shops = shop_buckets(merchant=merchant, livemode=livemode, currency=currency, buckets=buckets)
    shop, shop_ever = shops["now"], shops["ever"]
    has_data = bool(
        ever["clicks"] or ever["participants_joined"] or ever["attributed_orders"] or ever["signups"]
        or shop_ever["orders"]
    )  # fmt: skip

    def card(key, label, value, change, link, detail=None, lower_is_better=False):
        return Card(key, label, value if has_data else None, empty, change if has_data else None, link, detail,
                    lower_is_better)  # fmt: skip

    roi = metrics.ratio(now["referred_revenue"] - now["rewards_cost"], now["rewards_cost"])
    roi_before = metrics.ratio(before["referred_revenue"] - before["rewards_cost"], before["rewards_cost"])
    conversion = metrics.ratio(now["attributed_orders"], now["clicks"])
    # A person in several programs is one referrer of the shop; friends enrolled by a referral are not referrers.
    participants = referrer_count(merchant=merchant, livemode=livemode, programs=programs, until=period.end)
    participation = metrics.share(participants, shop_ever["new_customers"])
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
             replace(links, ever=True, currency=None).participants(role="referrer"),
             _("%(p)s referrers / %(c)s customers")
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
            **cost_sums(),
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
                "cost": format_money(rewards_cost(row), program.currency),
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
    elif not (ever["clicks"] or ever["attributed_orders"] or ever["signups"] or any(r["clicks"] for r in rows)):
        # Orders or sign-ups from typed codes are activity too: "no clicks yet" would contradict their revenue.
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
