"""GET /api/v1/stats: a program's totals and days for a period, from the rollups."""

from __future__ import annotations

from decimal import Decimal

from analytics import metrics
from analytics.selectors.periods import Period
from analytics.selectors.sums import daily_series, daily_totals
from programs.models import Program
from referral_saas.money import quantize as quantize_money


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
