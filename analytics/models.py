"""Rollups: what the dashboard, the stats API, the A/B results and the leaderboards read.

Everything here is derived from the raw tables (clicks, codes, invites, shares, referrals, conversions, refunds,
rewards, fraud assessments) by `analytics.services.rollup`, and can be rebuilt from them at any time
(`manage.py rollup_stats --since ...`). Days are calendar days in the merchant's time zone. Money is Decimal in the
program's currency (ShopDailyStats: per currency); revenue is net of refunds unless the field says "gross".
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from programs.models import Participant, Program, ProgramVariant
from referral_saas.money import MoneyField
from referral_saas.tenancy.models import TenantModel


def _money(label):
    return MoneyField(label, default=0)


# The cost of rewards in good standing (not rejected, voided or clawed back), by status: a program's rewards cost is
# their sum, wherever it is shown (dashboard, home page, A/B results, the stats API).
COST_COLUMNS = ("cost_pending", "cost_approved", "cost_issued", "cost_redeemed")


class DailyStats(TenantModel):
    """One program (and A/B variant; none for participants without one) on one day."""

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("program"))
    variant = models.ForeignKey(
        ProgramVariant, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("variant")
    )
    day = models.DateField(_("day"))

    # the link and the people who share it
    clicks = models.PositiveIntegerField(_("clicks"), default=0, help_text=_("Not counting bots."))
    unique_visitors = models.PositiveIntegerField(_("unique visitors"), default=0)
    bot_clicks = models.PositiveIntegerField(_("bot clicks"), default=0)
    participants_joined = models.PositiveIntegerField(_("participants joined"), default=0)
    joined_and_shared = models.PositiveIntegerField(
        _("joined and shared"), default=0, help_text=_("Of the participants who joined this day, those who shared.")
    )
    first_shares = models.PositiveIntegerField(
        _("first-time sharers"), default=0, help_text=_("Participants who shared for the first time this day.")
    )
    invites_sent = models.PositiveIntegerField(_("invites sent"), default=0)
    shares = models.PositiveIntegerField(_("shares"), default=0)
    shares_by_channel = models.JSONField(_("shares by channel"), default=dict, blank=True)

    # friends
    signups = models.PositiveIntegerField(_("referred sign-ups"), default=0)
    referrals_rejected = models.PositiveIntegerField(_("referrals rejected"), default=0)

    # orders
    attributed_orders = models.PositiveIntegerField(_("attributed orders"), default=0)
    rejected_orders = models.PositiveIntegerField(_("referred orders not attributed"), default=0)
    referred_new_customers = models.PositiveIntegerField(
        _("referred new customers"), default=0, help_text=_("Attributed first purchases.")
    )
    rewarded = models.PositiveIntegerField(
        _("rewarded first purchases"), default=0, help_text=_("First purchases with a reward in good standing.")
    )
    referred_revenue_gross = _money(_("referred revenue (gross)"))
    referred_refunds = _money(_("refunds of referred orders"))
    referred_revenue = _money(_("referred revenue"))
    time_to_purchase = models.JSONField(
        _("time from click to first purchase"),
        default=dict,
        blank=True,
        help_text=_("A histogram: bucket number -> first purchases (see analytics.metrics.TTP_EDGES)."),
    )

    # customers acquired this day through the program, followed over their lifetime
    cohort_customers = models.PositiveIntegerField(_("customers acquired"), default=0)
    cohort_repeaters = models.PositiveIntegerField(_("of them bought again"), default=0)
    cohort_revenue = _money(_("their lifetime revenue"))

    # rewards (by the day they were created), cost in money by status
    rewards = models.PositiveIntegerField(_("rewards"), default=0)
    cost_pending = _money(_("rewards pending"))
    cost_approved = _money(_("rewards approved"))
    cost_issued = _money(_("rewards issued"))
    cost_redeemed = _money(_("rewards redeemed"))
    cost_rejected = _money(_("rewards rejected"))
    cost_voided = _money(_("rewards voided"))
    cost_clawed_back = _money(_("rewards clawed back"))

    # fraud (by the day they were scored)
    fraud_flagged = models.PositiveIntegerField(_("flagged for review"), default=0)
    fraud_rejected = models.PositiveIntegerField(_("rejected as fraud"), default=0)

    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "livemode", "program", "variant", "day"],
                nulls_distinct=False,
                name="daily_stats_unique_key",
            )
        ]
        indexes = [models.Index(fields=["merchant", "livemode", "day"], name="daily_stats_by_day")]
        ordering = ["-day", "program", "variant"]
        verbose_name = _("daily stats")
        verbose_name_plural = _("daily stats")

    def __str__(self) -> str:
        return f"{self.program} {self.day}" + (f" ({self.variant.name})" if self.variant_id else "")

    @property
    def rewards_cost(self):
        """What the merchant pays or owes: rewards that are not rejected, voided or clawed back."""
        return sum((getattr(self, column) for column in COST_COLUMNS), Decimal(0))


class ShopDailyStats(TenantModel):
    """Every order the shop reported on one day (in one currency), referred or not: the KPIs' baseline."""

    livemode = models.BooleanField(default=True)
    currency = models.CharField(max_length=3)
    day = models.DateField(_("day"))
    orders = models.PositiveIntegerField(_("orders"), default=0)
    revenue_gross = _money(_("revenue (gross)"))
    refunds = _money(_("refunds"))
    revenue = _money(_("revenue"))
    attributed_orders = models.PositiveIntegerField(_("referred orders"), default=0)
    attributed_revenue = _money(_("referred revenue"))
    new_customers = models.PositiveIntegerField(_("new customers"), default=0)
    referred_new_customers = models.PositiveIntegerField(_("new customers from referrals"), default=0)
    other_cohort_customers = models.PositiveIntegerField(_("new customers not referred"), default=0)
    other_cohort_repeaters = models.PositiveIntegerField(_("of them bought again"), default=0)
    other_cohort_revenue = _money(_("their lifetime revenue"))
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "livemode", "currency", "day"], name="shop_stats_unique_key")
        ]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} {self.currency}"


class CustomerStats(TenantModel):
    """One customer of the shop (by the shop's customer id, else email) over their lifetime, in the currency of
    their first order: where they came from and what they bought since."""

    livemode = models.BooleanField(default=True)
    customer_key = models.CharField(max_length=260)
    currency = models.CharField(max_length=3)
    first_order_at = models.DateTimeField()
    first_day = models.DateField()
    referred = models.BooleanField(default=False)
    program = models.ForeignKey(Program, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    variant = models.ForeignKey(ProgramVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    orders = models.PositiveIntegerField(default=0)
    revenue = _money(_("revenue"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "livemode", "customer_key"], name="customer_stats_unique_key")
        ]
        indexes = [
            models.Index(fields=["merchant", "livemode", "program", "first_day"], name="customer_stats_by_program"),
            models.Index(fields=["merchant", "livemode", "currency", "first_day"], name="customer_stats_by_day"),
        ]

    def __str__(self) -> str:
        return self.customer_key


class ReferrerDailyStats(TenantModel):
    """One referrer in one program on one day, for days with sign-ups or orders (the period leaderboard)."""

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    signups = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    new_customers = models.PositiveIntegerField(default=0)
    revenue = _money(_("revenue"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "livemode", "program", "day", "participant"], name="referrer_daily_unique_key"
            )
        ]
        indexes = [
            models.Index(fields=["merchant", "livemode", "program", "participant"], name="referrer_daily_by_person")
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.day}"


class ReferrerStats(TenantModel):
    """One referrer in one program, all time: when they joined and first shared, and their results."""

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(ProgramVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    joined_at = models.DateTimeField()
    joined_day = models.DateField()
    first_shared_at = models.DateTimeField(null=True, blank=True)
    first_shared_day = models.DateField(null=True, blank=True)
    signups = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    new_customers = models.PositiveIntegerField(default=0)
    revenue = _money(_("revenue"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "livemode", "program", "participant"], name="referrer_stats_unique_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["merchant", "livemode", "program", "-new_customers", "-signups", "participant"],
                name="referrer_stats_ranking",
            ),
            models.Index(fields=["merchant", "livemode", "program", "joined_day"], name="referrer_stats_by_joined"),
            models.Index(
                fields=["merchant", "livemode", "program", "first_shared_day"], name="referrer_stats_by_shared"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} in {self.program_id}"


class RollupState(TenantModel):
    """Where the incremental rollup stands: when it last ran and the ids of the raw tables it had read up to.

    One row per merchant, all written by the same run (the raw tables are read across merchants in one pass, by id).
    `checkpoints` keeps the last runs' watermarks: a run re-reads from a checkpoint at least LOOKBACK older than the
    previous run, so rows whose transactions were still open when a run read the ids (ids are handed out before the
    commit) are counted by the next one.
    """

    last_run_at = models.DateTimeField(null=True, blank=True)
    checkpoints = models.JSONField(default=list, blank=True)
    last_keys = models.PositiveIntegerField(default=0, help_text="Program days recomputed by the last run.")
    last_seconds = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant"], name="rollup_state_one_per_merchant")]

    def __str__(self) -> str:
        return f"rollup state of {self.merchant_id}"
