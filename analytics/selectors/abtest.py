"""A/B results per variant and their verdict sentences (two-proportion z-test on first purchases per click)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils.translation import gettext as _

from analytics import metrics
from analytics.models import DailyStats
from analytics.selectors.formatting import format_percent
from analytics.selectors.links import Links
from analytics.selectors.periods import Period
from analytics.selectors.sums import ZERO, cost_sums, rewards_cost
from programs.models import Program, ProgramVariant
from referral_saas.money import format_money


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


def ab_results(
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
            **cost_sums(),
        )
    )
    by_variant = {row["variant"]: row for row in rows}
    variants = list(ProgramVariant.objects.for_merchant(merchant).filter(program=program).order_by("name"))
    if not variants:
        return [], ""
    results = []
    for variant in variants:
        row = by_variant.get(variant.pk, {})
        cost = rewards_cost(row)
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
