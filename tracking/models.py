"""Codes and links, clicks, referrals (referrer -> friend), the shop's orders (conversions) and refunds."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from programs.models import Participant, Program, ProgramVariant
from referral_saas.money import MoneyField, format_money, validate_currency
from referral_saas.tenancy.models import Merchant, TenantModel


class ReferralCode(TenantModel):
    """A participant's code (and link) in one program: readable, case-insensitive, unique."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        DISABLED = "disabled", _("Disabled")

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="codes")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="codes")
    variant = models.ForeignKey(ProgramVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    code = models.CharField(_("code"), max_length=32)
    code_normalized = models.CharField(max_length=32, editable=False)
    is_vanity = models.BooleanField(_("vanity code"), default=False, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code_normalized"], name="code_unique_per_merchant"),
            models.UniqueConstraint(fields=["merchant", "program", "participant"], name="code_one_per_participant"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("referral code")

    def __str__(self) -> str:
        return self.code

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class CodeRoute(models.Model):
    """`/r/<code>` names no merchant: this global table says whose code it is.

    A Citus reference table, not a tenant table: one row per code, written with the code, read (through the cache)
    by the click redirect.
    """

    code_normalized = models.CharField(max_length=32, primary_key=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    referral_code = models.OneToOneField(ReferralCode, on_delete=models.CASCADE, related_name="route")

    def __str__(self) -> str:
        return self.code_normalized


class Click(TenantModel):
    """One visit of a referral link. Written by the ingest task from the Redis stream, never by the request.

    The table is partitioned by month of `occurred_at` (UTC; PostgreSQL declarative partitioning, see
    tracking/partitions.py): its primary key is (id, occurred_at) in the database, and a click is unique by
    (merchant, click_id, occurred_at), which the stream's replays repeat exactly. Django knows `id` alone as the key
    (ids come from one sequence and are unique), and referrals and orders point at a click without a database
    constraint (docs/architecture.md, "Clicks by month").
    """

    livemode = models.BooleanField(default=True)
    click_id = models.UUIDField(default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField()
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    code = models.ForeignKey(ReferralCode, on_delete=models.CASCADE, related_name="clicks")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    ip_hash = models.CharField(max_length=32, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    referer = models.CharField(max_length=512, blank=True)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)
    utm_term = models.CharField(max_length=100, blank=True)
    utm_content = models.CharField(max_length=100, blank=True)
    is_bot = models.BooleanField(default=False)
    # The platform's device cookie. A database default too: raw inserts (seed_large) and workers still running the
    # previous release during a deploy leave it out.
    device_id = models.CharField(_("device id"), max_length=128, blank=True, default="", db_default="")

    class Meta:
        # The partition key is part of every unique constraint of a partitioned table.
        constraints = [
            models.UniqueConstraint(fields=["merchant", "click_id", "occurred_at"], name="click_unique_id"),
        ]
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["merchant", "program", "occurred_at"], name="click_by_program_time"),
            models.Index(fields=["merchant", "code", "occurred_at"], name="click_by_code_time"),
            # The newest clicks first (the admin's list): the newest partition's first page, not a sort of all.
            models.Index(fields=["merchant", "occurred_at"], name="click_by_time"),
        ]

    def __str__(self) -> str:
        return str(self.click_id)


class ClickPurge(models.Model):
    """A month of raw clicks that retention dropped (after the rollups had counted it): written by
    `tracking.partitions.click_months_drop`, read by the rollups, which keep the click numbers of days before
    `purged_before` instead of recounting them from raw clicks that are gone. Not a tenant table: one row per month
    for all merchants."""

    month = models.DateField(unique=True, help_text=_("The first day of the month (UTC)."))
    purged_before = models.DateTimeField()
    clicks = models.BigIntegerField(default=0)
    dropped_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class Referral(TenantModel):
    """A referrer brought a friend: from the friend's sign-up (or first attributed order) on."""

    class Status(models.TextChoices):
        CLICKED = "clicked", _("Clicked")
        SIGNED_UP = "signed_up", _("Signed up")
        CONVERTED = "converted", _("Converted")
        REJECTED = "rejected", _("Rejected")

    class Reason(models.TextChoices):
        SELF_REFERRAL = "self_referral", _("The friend is the referrer")
        BLOCKED_REFERRER = "blocked_referrer", _("The referrer is blocked")
        EXISTING_CUSTOMER = "existing_customer", _("The friend had ordered before")
        FRAUD = "fraud", _("Rejected as fraud")
        MANUAL = "manual", _("Rejected by the merchant")
        PROGRAM_INACTIVE = "program_inactive", _("The program was not running")
        OUTSIDE_WINDOW = "outside_window", _("Outside the attribution window")
        CURRENCY_MISMATCH = "currency_mismatch", _("In another currency than the program, without an exchange rate")

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="referrals")
    variant = models.ForeignKey(ProgramVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    referrer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="referrals_made")
    code = models.ForeignKey(ReferralCode, on_delete=models.CASCADE, related_name="referrals")
    # No database constraint: a key into the partitioned click table would have to carry the partition key; Django
    # still sets it NULL when a click is deleted, and dropping a month of clicks (retention) sets it NULL first.
    click = models.ForeignKey(
        Click, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    referee = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals_received"
    )
    referee_external_id = models.CharField(max_length=128, null=True, blank=True)
    referee_email = models.EmailField(max_length=254, null=True, blank=True)
    referee_email_normalized = models.CharField(max_length=254, null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SIGNED_UP)
    rejection_reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, blank=True)
    touched_at = models.DateTimeField(help_text=_("The click or sign-up that opened the attribution window."))
    signed_up_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    # The friend's Google Analytics client id at sign-up (referral.js reads the shop's _ga cookie): GA4 events.
    ga_client_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            # A friend is referred once per program (per mode): first touch keeps it, last touch moves it.
            # One referral per friend and program. The friend's column comes before the program: the index also
            # serves the lookup of a friend's referral in any program (attribution, sign-ups), which with the
            # program second would read every referral of the merchant (measured: docs/benchmarks.md).
            models.UniqueConstraint(
                fields=["merchant", "livemode", "referee_external_id", "program"],
                condition=Q(referee_external_id__isnull=False),
                name="referral_unique_referee_external_id",
            ),
            models.UniqueConstraint(
                fields=["merchant", "livemode", "referee_email_normalized", "program"],
                condition=Q(referee_email_normalized__isnull=False),
                name="referral_unique_referee_email",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""), name="referral_rejection_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "referrer", "status"], name="referral_by_referrer"),
            models.Index(fields=["merchant", "program", "created_at"], name="referral_by_program_time"),
            models.Index(fields=["created_at"], condition=Q(status="signed_up"), name="referral_signed_up_recent"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        friend = self.referee_email or self.referee_external_id or "?"
        return f"{self.referrer} → {friend}"


class Conversion(TenantModel):
    """An order the shop reported, attributed or not (unattributed orders are the analytics baseline).

    `amount`, `currency` and `refunded_amount` are the order as the shop reported it. `program_amount` and
    `program_refunded_amount` are the same in the program's currency (`program_currency`): what rewards and the
    program's stats count. An order in another currency is converted at the merchant's exchange rate in force when it
    was placed (`exchange_rate`, kept so that its refunds convert at the same rate); without a rate it is not
    attributed (reason currency_mismatch) and has no program amount.
    """

    class Status(models.TextChoices):
        ATTRIBUTED = "attributed", _("Attributed")
        UNATTRIBUTED = "unattributed", _("Not referred")
        REJECTED = "rejected", _("Referred but not attributed")

    livemode = models.BooleanField(default=True)
    order_id = models.CharField(_("order id"), max_length=128)
    amount = MoneyField(
        _("amount"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    refunded_amount = MoneyField(_("refunded"), default=0)
    program_amount = MoneyField(_("amount in the program's currency"), null=True, blank=True)
    program_currency = models.CharField(_("program currency"), max_length=3, blank=True, default="", db_default="")
    program_refunded_amount = MoneyField(_("refunded in the program's currency"), default=0, db_default=0)
    exchange_rate = models.DecimalField(
        _("exchange rate"),
        max_digits=20,
        decimal_places=10,
        null=True,
        blank=True,
        help_text=_(
            "Units of the program's currency for one unit of the order's; empty when no conversion was needed."
        ),
    )
    customer_external_id = models.CharField(max_length=128, null=True, blank=True)
    customer_email = models.EmailField(max_length=254, null=True, blank=True)
    customer_email_normalized = models.CharField(max_length=254, null=True, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    rejection_reason = models.CharField(_("reason"), max_length=20, choices=Referral.Reason.choices, blank=True)
    program = models.ForeignKey(Program, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversions")
    # No database constraint: a key into the partitioned click table would have to carry the partition key; Django
    # still sets it NULL when a click is deleted, and dropping a month of clicks (retention) sets it NULL first.
    click = models.ForeignKey(
        Click, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    code_given = models.CharField(max_length=32, blank=True)
    is_new_customer = models.BooleanField(default=True)
    occurred_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    ip_hash = models.CharField(max_length=32, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    payment_fingerprint = models.CharField(max_length=128, blank=True)
    address_hash = models.CharField(max_length=128, blank=True)
    device_id = models.CharField(max_length=128, blank=True)
    # The buyer's Google Analytics client id (referral.js reads the shop's _ga cookie): GA4 events.
    ga_client_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "livemode", "order_id"], name="conversion_unique_order"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="conversion_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="conversion_refunds_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(program_amount__isnull=True)
                | (Q(program_refunded_amount__gte=0) & Q(program_refunded_amount__lte=models.F("program_amount"))),
                name="conversion_program_refunds_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "livemode", "customer_external_id"], name="conversion_by_customer_id"),
            models.Index(fields=["merchant", "livemode", "customer_email_normalized"], name="conversion_by_email"),
            models.Index(fields=["merchant", "program", "occurred_at"], name="conversion_by_program_time"),
            models.Index(fields=["merchant", "livemode", "occurred_at"], name="conversion_by_time"),
            # The rewards sweeper (all merchants): attributed orders whose processing message was lost.
            models.Index(
                fields=["created_at"],
                condition=Q(status="attributed") | Q(rejection_reason="fraud"),
                name="conversion_to_process_recent",
            ),
            # The batched rewards pipeline (one merchant): undecided orders created after the one it was sent for.
            models.Index(
                fields=["merchant", "created_at"],
                condition=Q(status="attributed") | Q(rejection_reason="fraud"),
                name="conversion_to_process_by_m",
            ),
        ]
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.order_id} ({format_money(self.amount, self.currency)})"

    @property
    def attributed(self) -> bool:
        return self.status == self.Status.ATTRIBUTED

    @property
    def kept_program_amount(self) -> Decimal:
        """What the customer kept of the order (less refunds), in the program's currency: what rewards are worth."""
        if self.program_amount is None:  # written before program amounts existed (same currency then)
            return self.amount - self.refunded_amount
        return self.program_amount - self.program_refunded_amount


class Refund(TenantModel):
    """A full or partial refund of a conversion, as the shop reported it. The rewards side acts on it."""

    livemode = models.BooleanField(default=True)
    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="refunds")
    refund_id = models.CharField(_("refund id"), max_length=128)
    amount = MoneyField(
        _("amount"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "conversion", "refund_id"], name="refund_unique_id"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [models.Index(fields=["created_at"], name="refund_recent")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.refund_id}: {format_money(self.amount, self.currency)}"


class ExchangeRate(TenantModel):
    """The merchant's own exchange rate: `rate` units of `quote_currency` (a program's currency) for one unit of
    `base_currency` (an order's currency), from `valid_from` (a day in the merchant's time zone) until the next
    rate of the pair. An order in another currency than its program is converted at the rate in force the day it
    was placed."""

    base_currency = models.CharField(
        _("order currency"), max_length=3, validators=[validate_currency], help_text=_("The currency orders come in.")
    )
    quote_currency = models.CharField(
        _("program currency"),
        max_length=3,
        validators=[validate_currency],
        help_text=_("The currency the program pays in."),
    )
    rate = models.DecimalField(
        _("rate"),
        max_digits=20,
        decimal_places=10,
        help_text=_("How much of the program currency one unit of the order currency is worth."),
    )
    valid_from = models.DateField(_("valid from"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "base_currency", "quote_currency", "valid_from"], name="exchange_rate_unique_day"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
            models.CheckConstraint(
                condition=~Q(base_currency=models.F("quote_currency")), name="exchange_rate_two_currencies"
            ),
        ]
        ordering = ["base_currency", "quote_currency", "-valid_from"]
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")

    def __str__(self) -> str:
        return f"1 {self.base_currency} = {self.rate.normalize():f} {self.quote_currency} ({self.valid_from})"
