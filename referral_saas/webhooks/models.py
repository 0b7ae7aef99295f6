"""Outgoing webhooks: a merchant's endpoints, the events (messages) sent to them, one delivery per message and
endpoint, and every attempt of a delivery."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from referral_saas.tenancy.models import TenantModel

# The events a shop can subscribe to. Other apps emit them through services.webhook_emit.
EVENT_TYPES = (
    "participant.created",
    "referral.created",
    "conversion.attributed",
    "fraud.flagged",
    "reward.approved",
    "reward.issued",
    "reward.voided",
    "reward.clawed_back",
)
EVENT_CHOICES = [(event_type, event_type) for event_type in EVENT_TYPES]


# The description that marks an endpoint made by a REST-hook subscription (Zapier's POST /api/v1/hooks): such an
# endpoint is deleted, not disabled, when its target answers 410 Gone (integrations/zapier.py).
REST_HOOK_DESCRIPTION = "Zapier REST hook"


class WebhookEndpoint(TenantModel):
    """A URL of the shop that receives signed events of one mode (live or test)."""

    class DisabledReason(models.TextChoices):
        NONE = "", _("—")
        MANUAL = "manual", _("Disabled by the shop")
        GONE = "gone", _("The endpoint answered 410 Gone")
        FAILING = "failing", _("Every delivery failed for 3 days")

    livemode = models.BooleanField(_("live mode"), default=True)
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = ArrayField(
        models.CharField(max_length=40, choices=EVENT_CHOICES),
        verbose_name=_("events"),
        default=list,
        blank=True,
        help_text=_("The events sent to this URL; none selected means all of them."),
    )
    # Standard Webhooks format: "whsec_" + base64 of 24 random bytes. The signer needs it in clear; it is shown once.
    secret = models.CharField(max_length=64, editable=False)
    # During a rotation the previous secret keeps signing too (a second signature) until it expires.
    previous_secret = models.CharField(max_length=64, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    disabled_reason = models.CharField(
        _("disabled because"), max_length=10, choices=DisabledReason.choices, blank=True, editable=False
    )
    failing_since = models.DateTimeField(
        _("failing since"), null=True, blank=True, editable=False, help_text=_("First failure since the last success.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"), name="webhook_endpoint_http"
            ),
            models.CheckConstraint(
                condition=Q(enabled=True, disabled_reason="") | (Q(enabled=False) & ~Q(disabled_reason="")),
                name="webhook_endpoint_disabled_has_reason",
            ),
        ]
        indexes = [
            # webhook_emit: the enabled endpoints of one merchant and mode, in one index lookup.
            models.Index(fields=["merchant", "livemode"], condition=Q(enabled=True), name="webhook_endpoint_enabled"),
            models.Index(fields=["merchant", "livemode", "created_at"], name="webhook_endpoint_by_created"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url

    @property
    def is_rest_hook(self) -> bool:
        return self.description.startswith(REST_HOOK_DESCRIPTION)

    @property
    def secret_hint(self) -> str:
        return f"whsec_…{self.secret[-4:]}" if self.secret else ""


class WebhookMessage(TenantModel):
    """One event. Its `msg_id` is the `webhook-id` header of every attempt to every endpoint, retries included."""

    msg_id = models.CharField(_("message id"), max_length=40, editable=False)
    type = models.CharField(_("event"), max_length=40, choices=EVENT_CHOICES)
    livemode = models.BooleanField(_("live mode"), default=True)
    payload = models.JSONField(_("data"), encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "msg_id"], name="webhook_message_unique_id")]
        indexes = [models.Index(fields=["merchant", "created_at"], name="webhook_message_by_created")]
        ordering = ["-created_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.msg_id} {self.type}"


class WebhookDelivery(TenantModel):
    """One message to one endpoint: pending until an attempt succeeds or the retries run out."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0, help_text=_("Every attempt, resends included."))
    # Attempts since the delivery was created or last resent: the position in the retry schedule.
    run_attempts = models.PositiveIntegerField(default=0, editable=False)
    # When the next attempt is due (kept here, not in the broker: the sweeper enqueues what is due). While an
    # attempt is in flight it is pushed forward by a lease, so no second worker picks the same attempt.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "endpoint", "message"], name="webhook_delivery_unique"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(next_attempt_at__isnull=True), name="webhook_delivery_done_not_due"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "endpoint", "created_at"], name="webhook_delivery_by_endpoint"),
            models.Index(fields=["merchant", "status", "created_at"], name="webhook_delivery_by_status"),
            # The sweeper's cross-merchant "what is due" scan: pending rows only, so it stays small.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"{self.message.msg_id} {self.message.type} → {self.endpoint.url}"


class WebhookAttempt(TenantModel):
    """One HTTP request of a delivery and what came back (or why nothing did)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(_("attempt"))
    url = models.CharField(_("URL"), max_length=2000)
    succeeded = models.BooleanField(_("succeeded"), default=False)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    response_excerpt = models.TextField(_("response (first KB)"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["merchant", "delivery", "created_at"], name="webhook_attempt_by_delivery")]
        ordering = ["-created_at"]
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"
