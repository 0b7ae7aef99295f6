"""Fraud scoring: per-program rules, the merchant's blocklist, where referrers were seen, and the scored
assessments (with their human reviews)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from programs.models import Participant, Program
from referral_saas.tenancy.models import TenantModel
from tracking.models import Conversion, Referral


class FraudSettings(TenantModel):
    """A program's fraud rules. A program without a row uses the field defaults (see selectors.settings_for)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("program"))
    review_threshold = models.PositiveSmallIntegerField(
        _("review from score"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("A score at or above this waits for a human review (below it is approved)."),
    )
    reject_threshold = models.PositiveSmallIntegerField(
        _("reject from score"),
        default=70,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("A score at or above this is rejected as fraud."),
    )
    velocity_per_hour = models.PositiveIntegerField(
        _("referred orders per hour"),
        default=5,
        validators=[MinValueValidator(1)],
        help_text=_("More attributed orders of one referrer in an hour than this is suspicious."),
    )
    velocity_per_day = models.PositiveIntegerField(
        _("referred orders per day"),
        default=20,
        validators=[MinValueValidator(1)],
        help_text=_("More attributed orders of one referrer in a day than this is suspicious."),
    )
    min_seconds_click_to_order = models.PositiveIntegerField(
        _("minimum seconds from click to order"),
        default=20,
        help_text=_("An order placed sooner than this after the referral click is suspicious."),
    )
    check_disposable_email = models.BooleanField(
        _("flag disposable email addresses"),
        default=True,
        help_text=_("A friend whose email is at a throwaway-mailbox domain is flagged."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "program"], name="fraud_settings_one_per_program"),
            models.CheckConstraint(
                condition=Q(review_threshold__gte=1, review_threshold__lte=100)
                & Q(reject_threshold__gte=1, reject_threshold__lte=100)
                & Q(review_threshold__lte=models.F("reject_threshold")),
                name="fraud_settings_thresholds_in_order",
                violation_error_message=_("The reject score must be at least the review score (both 1 to 100)."),
            ),
            models.CheckConstraint(
                condition=Q(velocity_per_hour__gte=1, velocity_per_day__gte=1), name="fraud_settings_velocity_positive"
            ),
        ]
        verbose_name = _("fraud settings")
        verbose_name_plural = _("fraud settings")

    def __str__(self) -> str:
        return f"{self.program}"


class BlocklistEntry(TenantModel):
    """An email, email domain, IP address or IP network the merchant never wants to pay for.

    `value` is stored normalised (services.blocklist_normalize): emails as compared everywhere (lowercase, +tags
    and Gmail dots gone), domains lowercase in ASCII (IDNA), IPs and networks in canonical form. IP entries also
    keep the keyed hash that clicks and sightings store, so they match those too.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email address")
        DOMAIN = "domain", _("Email domain")
        IP = "ip", _("IP address")
        CIDR = "cidr", _("IP network (CIDR)")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    value = models.CharField(_("value"), max_length=254)
    ip_hash = models.CharField(max_length=32, blank=True, editable=False)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "kind", "value"], name="blocklist_unique_value"),
        ]
        indexes = [
            models.Index(fields=["merchant", "ip_hash"], condition=~Q(ip_hash=""), name="blocklist_by_ip_hash"),
        ]
        ordering = ["kind", "value"]
        verbose_name = _("blocklist entry")
        verbose_name_plural = _("blocklist")

    def __str__(self) -> str:
        return f"{self.value} ({self.get_kind_display()})"


class Sighting(TenantModel):
    """Where a referrer was seen (joining in the portal, or reported by the shop's participant API).

    One row per (participant, IP hash, device, user agent); seeing the same again only moves `seen_at`.
    """

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    ip_hash = models.CharField(max_length=32, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    device_id = models.CharField(max_length=128, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "participant", "ip_hash", "device_id", "user_agent"], name="sighting_unique"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "participant", "seen_at"], name="sighting_by_participant")]
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.participant} @ {self.seen_at:%Y-%m-%d %H:%M}"


class Decision(models.TextChoices):
    APPROVE = "approve", _("Approve")
    REVIEW = "review", _("Review")
    REJECT = "reject", _("Reject")


class FraudAssessment(TenantModel):
    """The score of one attributed order (or of a friend's sign-up, when `conversion` is null) and its decision.

    `auto_decision` is what the thresholds said; `decision` is the final one (a human review may change it).
    One assessment per order and one per sign-up, guarded by the database.
    """

    Decision = Decision

    livemode = models.BooleanField(default=True)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("program"))
    referral = models.ForeignKey(
        Referral, on_delete=models.CASCADE, related_name="fraud_assessments", verbose_name=_("referral")
    )
    conversion = models.ForeignKey(
        Conversion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="fraud_assessments",
        verbose_name=_("order"),
    )
    score = models.PositiveSmallIntegerField(_("score"), validators=[MaxValueValidator(100)])
    signals = models.JSONField(_("signals"), default=list, blank=True)
    auto_decision = models.CharField(_("automatic decision"), max_length=8, choices=Decision.choices)
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_reason = models.TextField(_("review reason"), blank=True)
    created_at = models.DateTimeField(_("scored at"), default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "conversion"],
                condition=Q(conversion__isnull=False),
                name="assessment_one_per_conversion",
            ),
            models.UniqueConstraint(
                fields=["merchant", "referral"],
                condition=Q(conversion__isnull=True),
                name="assessment_one_per_signup",
            ),
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=100), name="assessment_score_0_to_100"),
        ]
        indexes = [
            models.Index(fields=["merchant", "decision", "created_at"], name="assessment_queue"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("fraud assessment")
        verbose_name_plural = _("fraud review queue")

    def __str__(self) -> str:
        subject = f"order {self.conversion.order_id}" if self.conversion_id else "sign-up"
        return f"{subject}: {self.score} ({self.decision})"


class FraudReviewEvent(TenantModel):
    """The audit trail: who approved or rejected an assessment, when, why, and what it was before."""

    class Action(models.TextChoices):
        APPROVE = "approve", _("Approved")
        REJECT = "reject", _("Rejected")

    assessment = models.ForeignKey(FraudAssessment, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("by")
    )
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    previous_decision = models.CharField(_("was"), max_length=8, choices=Decision.choices)
    reason = models.TextField(_("reason"))
    at = models.DateTimeField(_("at"), default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["merchant", "assessment", "at"], name="review_event_by_assessment")]
        ordering = ["at"]
        verbose_name = _("review")
        verbose_name_plural = _("review history")

    def __str__(self) -> str:
        return f"{self.action} by {self.user} at {self.at:%Y-%m-%d %H:%M}"
