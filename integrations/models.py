"""A merchant's connection to a shop platform, and every event the platform sent us (stored raw, processed once)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.crypto import EncryptedJSONField, EncryptedTextField
from referral_saas.tenancy.models import TenantModel


def new_inbound_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: the webhook URL cannot be guessed


class Provider(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    STRIPE = "stripe", "Stripe"
    # Marketing tools: we send them participants and events (integrations/marketing/), they send us nothing.
    KLAVIYO = "klaviyo", "Klaviyo"
    MAILCHIMP = "mailchimp", "Mailchimp"
    HUBSPOT = "hubspot", "HubSpot"
    SALESFORCE = "salesforce", "Salesforce"
    GA4 = "ga4", "Google Analytics 4"
    ZAPIER = "zapier", "Zapier"


MARKETING_PROVIDERS = (
    Provider.KLAVIYO,
    Provider.MAILCHIMP,
    Provider.HUBSPOT,
    Provider.SALESFORCE,
    Provider.GA4,
    Provider.ZAPIER,
)


DEFAULT_SETTINGS = {"orders": True, "refunds": True, "coupons": True, "reconcile": True}


class Connection(TenantModel):
    """One shop (a Shopify store, a WooCommerce site, a Stripe account) of a merchant.

    Credentials (access token, API keys) and the webhook secret are encrypted at rest (integrations/crypto.py).
    During a secret rotation the previous webhook secret is still accepted until it expires.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the shop's approval")
        ACTIVE = "active", _("Connected")
        DISCONNECTED = "disconnected", _("Disconnected")

    provider = models.CharField(_("platform"), max_length=20, choices=Provider.choices)
    account = models.CharField(
        _("account"),
        max_length=255,
        help_text=_("Shopify: the shop's domain (example.myshopify.com). WooCommerce: the site's URL. Stripe: the "
                    "account id (acct_...). Klaviyo: the account id. Mailchimp: the audience id. HubSpot: the portal "
                    "id. Salesforce: the instance URL. GA4: the measurement id (G-...). Zapier: a name."),
    )  # fmt: skip
    livemode = models.BooleanField(_("live mode"), default=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    credentials = EncryptedJSONField(_("credentials"), blank=True, default=dict, editable=False)
    webhook_secret = EncryptedTextField(_("webhook secret"), blank=True, editable=False)
    previous_webhook_secret = EncryptedTextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    inbound_token = models.CharField(max_length=64, default=new_inbound_token, editable=False)
    base_url = models.URLField(
        _("API base URL"),
        max_length=500,
        blank=True,
        editable=False,
        help_text=_("Every outbound call of this connection goes here instead of the platform (self-hosted, tests)."),
    )
    settings = models.JSONField(_("what to sync"), default=dict, blank=True)
    # Where reconciliation goes on from: the platform's time of the last order or refund seen.
    synced_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    disconnected_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Marketing tools: when our fields (merge fields, contact properties) were created there; once per connection.
    setup_done_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "provider", "account", "livemode"], name="connection_one_per_account"
            ),
            models.UniqueConstraint(fields=["merchant", "inbound_token"], name="connection_unique_token"),
        ]
        # The inbound endpoint finds a connection by its token alone (the URL names no merchant): 256 random bits
        # make a cross-merchant collision impossible in practice; this is a lookup index, not a rule.
        indexes = [
            models.Index(fields=["inbound_token"], name="connection_token_lookup"),
            models.Index(fields=["status"], condition=Q(status="active"), name="connection_active"),
        ]
        ordering = ["provider", "account"]
        verbose_name = _("shop connection")
        verbose_name_plural = _("shop connections")

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.account}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def is_marketing(self) -> bool:
        return self.provider in MARKETING_PROVIDERS

    def syncs(self, what: str) -> bool:
        if self.is_marketing:  # a marketing tool takes no orders, refunds or coupons and is not reconciled
            return False
        return bool({**DEFAULT_SETTINGS, **(self.settings or {})}.get(what, False))

    @property
    def webhook_path(self) -> str:
        return reverse("integrations:webhook", kwargs={"provider": self.provider, "token": self.inbound_token})

    @property
    def webhook_url(self) -> str:
        return f"{settings.SITE_URL}{self.webhook_path}"

    def secrets_accepted(self, now=None) -> list[str]:
        """The webhook secrets a signature may use: the current one, and the previous one until it expires."""
        now = now or timezone.now()
        accepted = [self.webhook_secret] if self.webhook_secret else []
        if self.previous_webhook_secret and (
            self.previous_secret_expires_at is None or self.previous_secret_expires_at > now
        ):
            accepted.append(self.previous_webhook_secret)
        return accepted


class InboundEvent(TenantModel):
    """One event a platform sent (or reconciliation fetched): the raw body as received, stored once per platform
    event id, then processed by a worker. Replaying one processes the stored body again (safe: every write it leads
    to is idempotent)."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        WAITING = "waiting", _("Waiting for its order")
        FAILED = "failed", _("Failed")

    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook")
        RECONCILE = "reconcile", _("Reconciliation")

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(_("platform event id"), max_length=255)
    topic = models.CharField(_("topic"), max_length=100)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.WEBHOOK)
    body = models.BinaryField(_("raw body"))
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    # The order it is about ("shopify:450789469"): a refund waiting for its order is found by it.
    order_ref = models.CharField(_("order"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    outcome = models.CharField(_("outcome"), max_length=300, blank=True)
    # What a privacy request produced (the customer's data, for the shop to hand over).
    result = models.JSONField(_("result"), null=True, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now, editable=False)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "connection", "event_id"], name="inbound_event_once"),
        ]
        indexes = [
            models.Index(fields=["merchant", "connection", "received_at"], name="inbound_event_by_received"),
            models.Index(fields=["merchant", "connection", "order_ref"], name="inbound_event_by_order"),
            # The sweeper: events still to process, across merchants (beat), oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["received", "waiting", "failed"]),
                name="inbound_event_due",
            ),
        ]
        ordering = ["-received_at"]
        verbose_name = _("shop event")
        verbose_name_plural = _("shop events")

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id}"

    @property
    def text(self) -> str:
        return bytes(self.body).decode("utf-8", "replace")


class OutboundSync(TenantModel):
    """One thing to send to a marketing tool: a participant's profile, an event, or an erasure, made from one of our
    domain events for one connection. Written in the transaction of the domain event (nothing for a rolled-back
    write), sent by a worker after commit, retried while the tool is busy or down.

    `outbound_sync_once` (merchant, connection, kind, key) makes a domain event told twice (a retried task, a
    replayed platform event) one row: it is synced once. Replaying a row sends it again on purpose."""

    class Kind(models.TextChoices):
        PROFILE = "profile", _("Profile")
        EVENT = "event", _("Event")
        ERASE = "erase", _("Erasure")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Not sent")
        FAILED = "failed", _("Failed")

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="outbound_syncs")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # The domain event it comes from: "<event type>:<object id>" ("reward.issued:501").
    key = models.CharField(_("event"), max_length=200)
    event_type = models.CharField(_("event type"), max_length=40)
    participant = models.ForeignKey(
        "programs.Participant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The event's data as our webhooks carry it (an erasure: the identity to delete; emptied once sent).
    payload = models.JSONField(_("data"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    # What was sent and what answered, without personal data: "PUT /3.0/lists/abc/members/<md5> -> 200".
    request = models.CharField(_("request"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "connection", "kind", "key"], name="outbound_sync_once"),
        ]
        indexes = [
            models.Index(fields=["merchant", "connection", "created_at"], name="outbound_sync_by_created"),
            models.Index(fields=["merchant", "participant"], name="outbound_sync_by_participant"),
            # The worker and the sweeper: rows still to send, across merchants (beat), due first.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="outbound_sync_due"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("marketing sync")
        verbose_name_plural = _("marketing syncs")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key}"
