"""Referral programs, their A/B variants, and the merchant's customers who take part (participants)."""

from __future__ import annotations

import datetime

from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from referral_saas.money import MoneyField, validate_currency
from referral_saas.tenancy.models import LANGUAGE_CHOICES, TenantModel
from referral_saas.validators import SingleLineCharField


class Program(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")

    class AttributionModel(models.TextChoices):
        FIRST_TOUCH = "first_touch", _("First touch (the first referrer keeps the friend)")
        LAST_TOUCH = "last_touch", _("Last touch (the latest link or code wins)")

    name = SingleLineCharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, help_text=_("Used in the portal address: /p/<shop>/<slug>/"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    starts_on = models.DateField(_("starts on"), default=datetime.date.today)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    default_language = models.CharField(_("default language"), max_length=5, choices=LANGUAGE_CHOICES, default="en")
    landing_url = models.URLField(
        _("landing page"),
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("Where a friend lands after clicking a referral link (http or https)."),
    )
    attribution_window_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    attribution_model = models.CharField(
        _("attribution model"), max_length=12, choices=AttributionModel.choices, default=AttributionModel.FIRST_TOUCH
    )
    new_customers_only = models.BooleanField(
        _("new customers only"), default=True, help_text=_("Only a friend's first order at your shop counts.")
    )
    referrer_offer = models.CharField(
        _("what the referrer gets"),
        max_length=300,
        blank=True,
        help_text=_(
            "Optional: empty shows what the reward rules pay, generated in each language. Your own wording (e.g. a "
            "20 EUR voucher for every friend who buys) replaces it in this language and is checked against the rules."
        ),
    )
    referee_offer = models.CharField(
        _("what the friend gets"),
        max_length=300,
        blank=True,
        help_text=_(
            "Optional: empty shows what the reward rules pay the friend, generated in each language. Your own wording "
            "(e.g. 10 EUR off your first order) replaces it in this language and is checked against the rules."
        ),
    )
    friend_welcome_page = models.BooleanField(
        _("welcome the friend on a page of ours first"),
        default=False,
        help_text=_(
            "A referral link opens a welcome page (“Anna gave you a gift”) where the friend leaves their email and "
            "sees their sign-up reward's coupon at once, then continues to your landing page. Pays the friend's "
            "reward rules whose 'when' is the friend's sign-up. Off: links go straight to the landing page."
        ),
    )
    terms = models.TextField(_("terms"), blank=True)
    good_fit = models.TextField(
        _("who is a good fit to refer"), blank=True, help_text=_("Shown on the referral form, e.g. 'friends who bake'")
    )
    goal_customers = models.PositiveIntegerField(_("goal: referred customers"), null=True, blank=True)
    goal_revenue = MoneyField(_("goal: referred revenue"), null=True, blank=True)
    budget = MoneyField(_("budget"), null=True, blank=True)
    leaderboard_enabled = models.BooleanField(_("show a leaderboard in the portal"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "slug"], name="program_unique_slug"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="program_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(attribution_window_days__gte=1, attribution_window_days__lte=365),
                name="program_window_1_to_365_days",
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0), name="program_budget_not_negative"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def is_live(self, at: datetime.datetime | None = None) -> bool:
        """Active and inside its dates (in the merchant's time zone) at `at` (default now)."""
        if self.status != self.Status.ACTIVE:
            return False
        import zoneinfo

        at = at or timezone.now()
        day = at.astimezone(zoneinfo.ZoneInfo(self.merchant.timezone)).date()
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


class ProgramVariant(TenantModel):
    """An A/B arm of a program. Participants are assigned one deterministically by weight and keep it."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="variants")
    name = SingleLineCharField(_("name"), max_length=60)
    weight = models.PositiveSmallIntegerField(_("weight"), default=1, validators=[MinValueValidator(1)])
    referrer_offer = models.CharField(_("what the referrer gets (this variant)"), max_length=300, blank=True)
    referee_offer = models.CharField(_("what the friend gets (this variant)"), max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "program", "name"], name="variant_unique_name"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_positive"),
        ]
        ordering = ["program", "name"]

    def __str__(self) -> str:
        return f"{self.program.name} / {self.name}"


class Participant(TenantModel):
    """A customer of the merchant who refers friends. One per person per merchant (per mode)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")
        ERASED = "erased", _("Erased (privacy request)")

    livemode = models.BooleanField(default=True)
    external_id = models.CharField(_("shop customer id"), max_length=128, null=True, blank=True)
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)
    email_normalized = models.CharField(max_length=254, null=True, blank=True, editable=False)
    name = SingleLineCharField(_("name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=5, choices=LANGUAGE_CHOICES, default="en")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    referred_by = models.ForeignKey(
        "tracking.Referral",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The referral that brought this customer, if any."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "livemode", "external_id"],
                condition=Q(external_id__isnull=False),
                name="participant_unique_external_id",
            ),
            models.UniqueConstraint(
                fields=["merchant", "livemode", "email_normalized"],
                condition=Q(email_normalized__isnull=False),
                name="participant_unique_email",
            ),
            models.CheckConstraint(
                condition=Q(external_id__isnull=False) | Q(email_normalized__isnull=False) | Q(status="erased"),
                name="participant_has_identity",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "livemode", "created_at"], name="participant_by_created")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"#{self.pk}"

    @property
    def first_name_initial(self) -> str:
        """'Anna K.' for invitations and code lookups (see public_name); "A friend" for someone who gave no name."""
        return self.public_name or _("A friend")

    @property
    def public_name(self) -> str:
        """'Anna K.' for leaderboards: never the full name, and never a piece of an email address (people type
        theirs into the name field): a word with an @ is dropped, and so is a first word that is the email's local
        part when it is not a plain name ("jan.nowak"). "" when nothing is left."""
        parts = [part for part in (self.name or "").split() if "@" not in part]
        local = (self.email or "").partition("@")[0].casefold()
        if parts and not parts[0].isalpha() and parts[0].casefold() == local:
            parts = []
        if not parts:
            return ""
        return parts[0] + (f" {parts[-1][0]}." if len(parts) > 1 else "")


class Invite(TenantModel):
    """A participant emailed a friend from the portal. One per friend per program: no repeated nagging."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="invites")
    email = models.EmailField(max_length=254)
    email_normalized = models.CharField(max_length=254)
    message = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=5, choices=LANGUAGE_CHOICES, default="en")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "program", "participant", "email_normalized"], name="invite_once_per_friend"
            )
        ]
        indexes = [
            models.Index(fields=["merchant", "participant", "created_at"], name="invite_by_participant"),
            # the rollup's per-program, per-day reads
            models.Index(fields=["merchant", "program", "created_at"], name="invite_by_program_time"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email


class ShareEvent(TenantModel):
    """A participant shared their link on a channel (counted for "shares by channel"): at most once per participant,
    program, channel and day, so that reloads, double clicks and retries do not inflate the counts."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WHATSAPP = "whatsapp", "WhatsApp"
        FACEBOOK = "facebook", "Facebook"
        X = "x", "X"
        LINKEDIN = "linkedin", "LinkedIn"
        TELEGRAM = "telegram", "Telegram"
        VK = "vk", "VK"
        SMS = "sms", "SMS"
        COPY = "copy", _("Copied link")
        QR = "qr", _("QR code")
        NATIVE = "native", _("Phone's share sheet")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    day = models.DateField(_("day"), editable=False)  # created_at's date in the merchant's time zone

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "participant", "program", "channel", "day"], name="share_once_per_day"
            )
        ]
        indexes = [models.Index(fields=["merchant", "program", "created_at"], name="share_by_program_time")]

    def __str__(self) -> str:
        return self.channel


class ProgramText(TenantModel):
    """A program's customer-facing texts in one more language (the program's own fields are the default)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("language"), max_length=5, choices=LANGUAGE_CHOICES)
    name = SingleLineCharField(_("name"), max_length=200, blank=True)
    referrer_offer = models.CharField(_("what the referrer gets"), max_length=300, blank=True)
    referee_offer = models.CharField(_("what the friend gets"), max_length=300, blank=True)
    good_fit = models.TextField(_("who is a good fit to refer"), blank=True)
    terms = models.TextField(_("terms"), blank=True)

    TRANSLATED = ("name", "referrer_offer", "referee_offer", "good_fit", "terms")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "program", "language"], name="program_text_one_per_language")
        ]
        verbose_name = _("text in another language")
        verbose_name_plural = _("texts in other languages")

    def __str__(self) -> str:
        return f"{self.program} ({self.language})"
