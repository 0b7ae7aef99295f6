"""Reward rules, rewards and their lifecycle, coupon pools, the points and money ledgers, the points catalog.

Every write a retry could repeat is made idempotent by a constraint here: one reward per (rule, conversion, side),
per (rule, referral, side) for sign-up rewards, per (rule, participant, milestone); one "earned" ledger entry per
reward and one adjustment per (reward, refund); one pool coupon per reward.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from programs.models import Participant, Program, ProgramVariant
from referral_saas.money import MoneyField, format_money
from referral_saas.tenancy.models import TenantModel
from referral_saas.validators import SingleLineCharField
from tracking.models import Conversion, Referral, Refund


class Side(models.TextChoices):
    REFERRER = "referrer", _("Referrer")
    REFEREE = "referee", _("Friend")


class Kind(models.TextChoices):
    PERCENT_COUPON = "percent_coupon", _("Percent-off coupon")
    AMOUNT_COUPON = "amount_coupon", _("Amount-off coupon")
    POOL_COUPON = "pool_coupon", _("Coupon from an uploaded pool")
    POINTS = "points", _("Loyalty points")
    STORE_CREDIT = "store_credit", _("Store credit")
    CASH = "cash", _("Cash")
    FREE_PRODUCT = "free_product", _("Free product")
    CUSTOM = "custom", _("Custom reward or experience")


COUPON_KINDS = frozenset({Kind.PERCENT_COUPON, Kind.AMOUNT_COUPON, Kind.POOL_COUPON})
MONEY_KINDS = frozenset({Kind.AMOUNT_COUPON, Kind.STORE_CREDIT, Kind.CASH})


class Unit(models.TextChoices):
    MONEY = "money", _("Amount in the program's currency")
    PERCENT = "percent", _("Percent off")
    POINTS = "points", _("Points")
    ITEM = "item", _("Item (no amount)")


class CouponPool(TenantModel):
    """Codes the merchant made in their shop and uploaded (CSV); rewards take the next free one."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    name = SingleLineCharField(_("name"), max_length=100)
    description = models.CharField(
        _("what a code gives"), max_length=300, blank=True, help_text=_("e.g. a discount of 15%, shown to the customer")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "program", "name"], name="coupon_pool_unique_name")]
        ordering = ["name"]
        verbose_name = _("coupon pool")

    def __str__(self) -> str:
        return self.name


class RewardRule(TenantModel):
    """What a side gets, when, and within which limits. A program may have several (double-sided, milestones)."""

    class Trigger(models.TextChoices):
        FIRST_PURCHASE = "first_purchase", _("The friend's first purchase")
        EACH_PURCHASE = "each_purchase", _("Each purchase of the friend (up to a number)")
        SIGNUP = "signup", _("The friend's sign-up")
        MILESTONE = "milestone", _("The referrer reaches a number of successful referrals")

    class ValueType(models.TextChoices):
        FIXED = "fixed", _("Fixed value")
        PERCENT_OF_ORDER = "percent_of_order", _("Percentage of the order value")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="reward_rules")
    variant = models.ForeignKey(
        ProgramVariant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reward_rules",
        help_text=_("Only for this A/B variant; empty = every participant."),
    )
    name = SingleLineCharField(_("name"), max_length=120)
    side = models.CharField(_("who gets it"), max_length=10, choices=Side.choices)
    trigger = models.CharField(_("when"), max_length=16, choices=Trigger.choices, default=Trigger.FIRST_PURCHASE)
    max_purchases = models.PositiveSmallIntegerField(
        _("up to this many purchases"), null=True, blank=True, help_text=_("For 'each purchase'; empty = no limit.")
    )
    milestone = models.PositiveIntegerField(
        _("milestone (successful referrals)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    kind = models.CharField(_("reward"), max_length=16, choices=Kind.choices)
    value_type = models.CharField(_("value is"), max_length=16, choices=ValueType.choices, default=ValueType.FIXED)
    value = MoneyField(
        _("value"),
        default=0,
        help_text=_("An amount, a percent off, points, or the percentage of the order (see 'value is')."),
    )
    max_value = MoneyField(_("at most"), null=True, blank=True, help_text=_("Cap for a percentage."))
    min_order_value = MoneyField(_("minimum order value"), null=True, blank=True)
    description = models.CharField(
        _("description"), max_length=300, blank=True, help_text=_("The product or experience, shown to the customer.")
    )
    pool = models.ForeignKey(CouponPool, null=True, blank=True, on_delete=models.PROTECT, related_name="rules")
    coupon_prefix = models.CharField(_("coupon prefix"), max_length=12, blank=True, default="REF")
    coupon_valid_days = models.PositiveSmallIntegerField(_("coupon valid for (days)"), null=True, blank=True)
    hold_days = models.PositiveSmallIntegerField(
        _("hold (days)"), default=30, help_text=_("Released after the refund window; 0 = at once.")
    )
    cap_per_month = models.PositiveIntegerField(_("per referrer per month"), null=True, blank=True)
    cap_total = models.PositiveIntegerField(_("per referrer in total"), null=True, blank=True)
    valid_from = models.DateTimeField(_("offer starts"), null=True, blank=True)
    valid_until = models.DateTimeField(_("offer ends"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "program", "name"], name="reward_rule_unique_name"),
            models.CheckConstraint(condition=Q(value__gte=0), name="reward_rule_value_not_negative"),
            models.CheckConstraint(
                condition=~Q(trigger="milestone") | Q(milestone__gte=1), name="reward_rule_milestone_has_count"
            ),
            models.CheckConstraint(
                condition=~Q(kind="pool_coupon") | Q(pool__isnull=False), name="reward_rule_pool_coupon_has_pool"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="reward_rule_valid_range",
            ),
            # What rewards.services.rules.reward_rule_validate says and the engine relies on, for any writer.
            models.CheckConstraint(
                condition=Q(trigger="milestone") | Q(milestone__isnull=True), name="reward_rule_milestone_only_for_one"
            ),
            models.CheckConstraint(
                condition=~Q(trigger="milestone") | Q(side="referrer"), name="reward_rule_milestone_for_referrer"
            ),
            models.CheckConstraint(
                condition=Q(trigger="each_purchase") | Q(max_purchases__isnull=True),
                name="reward_rule_max_purchases_only_each",
            ),
            models.CheckConstraint(
                condition=Q(kind="pool_coupon") | Q(pool__isnull=True), name="reward_rule_pool_only_pool_coupon"
            ),
            models.CheckConstraint(
                condition=Q(value_type="percent_of_order") | Q(max_value__isnull=True),
                name="reward_rule_max_value_caps_percent",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent_coupon") | Q(value__lte=100), name="reward_rule_percent_coupon_max_100"
            ),
            models.CheckConstraint(
                condition=~Q(value_type="percent_of_order", kind__in=sorted(MONEY_KINDS)) | Q(value__lte=100),
                name="reward_rule_percent_of_order_max_100",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "program", "active"], name="reward_rule_by_program")]
        ordering = ["program", "side", "trigger", "milestone"]
        verbose_name = _("reward rule")

    def __str__(self) -> str:
        return self.name

    @property
    def unit(self) -> str:
        if self.kind == Kind.PERCENT_COUPON:
            return Unit.PERCENT
        if self.kind == Kind.POINTS:
            return Unit.POINTS
        if self.kind in MONEY_KINDS:
            return Unit.MONEY
        return Unit.ITEM


class Reward(TenantModel):
    """One reward for one person. Status changes only through rewards.services.transitions.reward_transition."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        ISSUED = "issued", _("Issued")
        REDEEMED = "redeemed", _("Redeemed")
        REJECTED = "rejected", _("Rejected")
        VOIDED = "voided", _("Voided")
        CLAWED_BACK = "clawed_back", _("Clawed back")

    class Flag(models.TextChoices):
        NONE = "", _("None")
        POOL_EMPTY = "pool_empty", _("Coupon pool is empty")
        PLATFORM_PENDING = "platform", _("Not yet created on the shop platform")

    class ReasonCode(models.TextChoices):
        """Why a reward was rejected, voided or clawed back, for pages to say in the reader's language (`reason`
        is the free-text note for the audit trail)."""

        NONE = "", _("None")
        FRAUD = "fraud", _("Rejected as fraud")
        CAP = "cap", _("A per-person limit was reached")
        BUDGET = "budget", _("The program's budget is spent")
        REFERRAL_REJECTED = "referral_rejected", _("The referral was rejected")
        REFUND = "refund", _("The order was refunded")
        STAFF = "staff", _("Ended by the shop's staff")

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(RewardRule, null=True, blank=True, on_delete=models.PROTECT, related_name="rewards")
    catalog_item = models.ForeignKey(
        "rewards.CatalogItem", null=True, blank=True, on_delete=models.PROTECT, related_name="rewards"
    )
    side = models.CharField(_("side"), max_length=10, choices=Side.choices)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="rewards")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.SET_NULL, related_name="rewards")
    conversion = models.ForeignKey(Conversion, null=True, blank=True, on_delete=models.SET_NULL, related_name="rewards")
    milestone = models.PositiveIntegerField(null=True, blank=True)
    purchase = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Which purchase of the friend paid it (1 = the first).")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    unit = models.CharField(max_length=8, choices=Unit.choices)
    # The rule's terms when the reward was made: a refund pro-rates by these even if the rule is edited later.
    percent_of_order = MoneyField(null=True, blank=True, editable=False)
    max_value = MoneyField(null=True, blank=True, editable=False)
    min_order_value = MoneyField(null=True, blank=True, editable=False)
    value = MoneyField(_("value"))
    original_value = MoneyField(editable=False)
    # A used coupon keeps its value as used; what refunds took back from it afterwards (the customer owes it) is
    # counted here, so the cost and the budget see only what was kept.
    taken_back = MoneyField(_("taken back"), default=0, editable=False)
    currency = models.CharField(_("currency"), max_length=3)
    description = models.CharField(_("description"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    reason_code = models.CharField(
        _("reason code"), max_length=20, choices=ReasonCode.choices, blank=True, default="", editable=False
    )
    flag = models.CharField(_("needs attention"), max_length=12, choices=Flag.choices, blank=True, default="")
    hold_until = models.DateTimeField(_("released on"))
    coupon_code = models.CharField(_("coupon code"), max_length=64, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text=_("When it was rejected, voided or clawed back."))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "rule", "conversion", "side"],
                condition=Q(conversion__isnull=False),
                name="reward_once_per_rule_conversion_side",
            ),
            models.UniqueConstraint(
                fields=["merchant", "rule", "referral", "side"],
                condition=Q(conversion__isnull=True, milestone__isnull=True, referral__isnull=False),
                name="reward_once_per_rule_signup_side",
            ),
            models.UniqueConstraint(
                fields=["merchant", "rule", "participant", "milestone"],
                condition=Q(milestone__isnull=False),
                name="reward_once_per_rule_milestone",
            ),
            # "The friend's first purchase" pays once per friend even if two orders race or arrive out of order.
            models.UniqueConstraint(
                fields=["merchant", "rule", "referral", "side", "purchase"],
                condition=Q(purchase__isnull=False),
                name="reward_once_per_rule_purchase_number",
            ),
            models.UniqueConstraint(
                fields=["merchant", "livemode", "coupon_code"],
                condition=~Q(coupon_code=""),
                name="reward_unique_coupon_code",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="reward_value_not_negative"),
            models.CheckConstraint(
                condition=Q(taken_back__gte=0, taken_back__lte=F("value")), name="reward_taken_back_within_value"
            ),
            models.CheckConstraint(
                condition=Q(rule__isnull=False) | Q(catalog_item__isnull=False), name="reward_has_a_source"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "participant", "status"], name="reward_by_participant"),
            models.Index(fields=["merchant", "program", "created_at"], name="reward_by_program_time"),
            models.Index(fields=["merchant", "conversion"], name="reward_by_conversion"),
            models.Index(fields=["merchant", "referral"], name="reward_by_referral"),
            # The release sweep: pending rewards whose hold has passed, approved ones not issued yet.
            models.Index(
                fields=["hold_until"], condition=Q(status__in=["pending", "approved"]), name="reward_due_for_release"
            ),
        ]
        ordering = ["-created_at"]
        verbose_name = _("reward")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_value} → {self.participant}"

    @property
    def display_value(self) -> str:
        if self.unit == Unit.MONEY:
            return format_money(self.value, self.currency)  # the currency's decimals, in the active language
        if self.unit == Unit.PERCENT:
            return f"{self.value.normalize():f}%"
        if self.unit == Unit.POINTS:
            return f"{int(self.value)} pts"
        return self.description

    @property
    def cost(self):
        """What the reward costs the merchant in money: its value less what refunds took back after it was used
        (percent coupons count when redeemed, by the shop)."""
        return self.value - self.taken_back if self.unit == Unit.MONEY else 0


class RewardEvent(TenantModel):
    """The audit trail: every status change (and value change) of a reward, who or what made it, and why."""

    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    actor = models.CharField(max_length=120, help_text=_("system:<task>, api, or user:<email>"))
    reason = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["merchant", "reward", "at"], name="reward_event_by_reward")]
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class RewardAdjustment(TenantModel):
    """A refund's effect on one reward (pro-rated, voided or clawed back). Once per (reward, refund)."""

    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="adjustments")
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="+")
    old_value = MoneyField()
    new_value = MoneyField()
    clawback = MoneyField(default=0, help_text=_("Amount or points the customer owes back."))
    action = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "reward", "refund"], name="reward_adjustment_once_per_refund")
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.action}: {self.old_value} → {self.new_value}"


class Coupon(TenantModel):
    """One code of an uploaded pool. Taken by at most one reward, under SELECT ... FOR UPDATE SKIP LOCKED."""

    pool = models.ForeignKey(CouponPool, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(_("code"), max_length=64)
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.SET_NULL, related_name="pool_coupons")
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "pool", "code"], name="coupon_unique_in_pool"),
            models.UniqueConstraint(
                fields=["merchant", "reward"], condition=Q(reward__isnull=False), name="coupon_one_per_reward"
            ),
        ]
        indexes = [
            models.Index(
                fields=["merchant", "pool", "id"], condition=Q(reward__isnull=True), name="coupon_free_in_pool"
            )
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code


class CatalogItem(TenantModel):
    """What points buy in a program: a coupon, a free product, exclusive access..."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="catalog")
    name = SingleLineCharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    points = models.PositiveIntegerField(_("price in points"), validators=[MinValueValidator(1)])
    kind = models.CharField(
        _("gives"),
        max_length=16,
        choices=[(k, label) for k, label in Kind.choices if k not in (Kind.POINTS, Kind.CASH)],
        default=Kind.AMOUNT_COUPON,
    )
    value = MoneyField(_("value"), default=0, help_text=_("Amount or percent off, for coupons."))
    pool = models.ForeignKey(CouponPool, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    coupon_valid_days = models.PositiveSmallIntegerField(_("coupon valid for (days)"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "program", "name"], name="catalog_item_unique_name"),
            models.CheckConstraint(condition=Q(points__gte=1), name="catalog_item_costs_points"),
            models.CheckConstraint(
                condition=~Q(kind="pool_coupon") | Q(pool__isnull=False), name="catalog_item_pool_coupon_has_pool"
            ),
        ]
        ordering = ["program", "position", "points"]
        verbose_name = _("catalog item")

    def __str__(self) -> str:
        return f"{self.name} ({self.points})"

    @property
    def unit(self) -> str:
        return RewardRule(kind=self.kind).unit


class LedgerEntry(TenantModel):
    """Append-only: points, store credit and cash due. A balance is a sum, never an updated counter."""

    class Account(models.TextChoices):
        POINTS = "points", _("Points")
        CREDIT = "credit", _("Store credit")
        CASH = "cash", _("Cash due")

    class Kind(models.TextChoices):
        EARNED = "earned", _("Earned")
        SPENT = "spent", _("Spent")
        CLAWBACK = "clawback", _("Taken back (refund)")
        PAYOUT = "payout", _("Paid out")
        ADJUSTMENT = "adjustment", _("Adjustment")

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="ledger")
    account = models.CharField(max_length=8, choices=Account.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = MoneyField(
        _("amount"),
    )
    currency = models.CharField(max_length=3, blank=True, help_text=_("Empty for points."))
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "reward"], condition=Q(kind="earned"), name="ledger_earned_once_per_reward"
            ),
            models.UniqueConstraint(
                fields=["merchant", "reward"], condition=Q(kind="spent"), name="ledger_spent_once_per_reward"
            ),
            models.UniqueConstraint(
                fields=["merchant", "reward", "refund"],
                condition=Q(kind="clawback"),
                name="ledger_clawback_once_per_refund",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["merchant", "participant", "account", "created_at"], name="ledger_by_account")]
        ordering = ["-created_at", "-pk"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger")

    def __str__(self) -> str:
        if self.account == self.Account.POINTS:
            return f"{self.account} {int(self.amount):+d}"
        return f"{self.account} {'+' if self.amount > 0 else ''}{format_money(self.amount, self.currency)}"


class Work(TenantModel):
    """Where the pipeline stands for one conversion, one friend's sign-up or one refund: in review, or done.

    Inserted and locked by the processing task, so a conversion delivered twice, concurrently or after a crash is
    processed once; the beat sweeper finds conversions and sign-ups without a finished row.
    """

    class Stage(models.TextChoices):
        REVIEW = "review", _("Waiting for a fraud review")
        DONE = "done", _("Done")

    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    conversion = models.ForeignKey(Conversion, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=8, choices=Stage.choices)
    decision = models.CharField(
        max_length=8, blank=True, help_text=_("The fraud decision acted on; a later review decision is acted on again.")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "conversion"],
                condition=Q(conversion__isnull=False, refund__isnull=True),
                name="work_once_per_conversion",
            ),
            models.UniqueConstraint(
                fields=["merchant", "referral"],
                condition=Q(conversion__isnull=True, refund__isnull=True),
                name="work_once_per_signup",
            ),
            models.UniqueConstraint(
                fields=["merchant", "refund"], condition=Q(refund__isnull=False), name="work_once_per_refund"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id or self.conversion_id or self.referral_id}: {self.stage}"


class Notification(TenantModel):
    """An email owed to a person (or the owner), written with the change that caused it and sent by a worker."""

    class Kind(models.TextChoices):
        FRIEND_PURCHASED = "friend_purchased", _("A friend bought")
        REWARD_ISSUED = "reward_issued", _("Reward issued")
        WELCOME_OFFER = "welcome_offer", _("Friend's welcome offer")
        BUDGET_SPENT = "budget_spent", _("Budget spent")
        POOL_EMPTY = "pool_empty", _("Coupon pool empty")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=64, help_text=_("What it is about (reward id, program id...): sent once."))
    participant = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    program = models.ForeignKey(Program, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    # Sending failed: how often, why (the mail server's answer), and when we gave up (a refused address, or too many
    # tries); a row given up on is never sent again.
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "kind", "key"], name="notification_once")]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(sent_at__isnull=True), name="notification_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"
