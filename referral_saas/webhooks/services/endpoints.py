"""Writes for webhook endpoints: create (the secret is returned once), change, enable/disable, rotate, delete."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import URLValidator
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from referral_saas.errors import Unprocessable, ValidationFailed
from referral_saas.tenancy.models import Membership, Merchant
from referral_saas.validators import single_line
from referral_saas.webhooks import sending
from referral_saas.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_MODE = 20  # every event is stored once per subscribed endpoint: keep the fan-out bounded
SECRET_BYTES = 24
ROTATION_GRACE = timedelta(hours=24)  # the previous secret keeps signing this long after a rotation
_url_validator = URLValidator(schemes=["http", "https"])


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def endpoint_url_check(*, url: str) -> str:
    """The URL, trimmed, if webhooks may go there: http(s), at most 2000 characters, and (unless
    WEBHOOKS_ALLOW_PRIVATE_URLS) not an address on our own network."""
    url = (url or "").strip()
    if not url:
        raise ValidationFailed(fields={"url": [_("Give the URL that receives the webhooks.")]})
    if len(url) > 2000:
        raise ValidationFailed(fields={"url": [_("The URL is longer than 2000 characters.")]})
    try:
        _url_validator(url)
    except ValidationError:
        raise ValidationFailed(fields={"url": [_("Enter a valid http:// or https:// URL.")]}) from None
    refusal = sending.url_refusal(url)
    if refusal:
        raise ValidationFailed(refusal, fields={"url": [refusal]})
    # Scheme and host are case-insensitive: stored in lower case ("HTTPS://Hooks.Example/a" is https://hooks.example/a).
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")
    netloc = host[0] + host[1] + host[2].lower()
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=netloc))


def endpoint_events_check(*, events: Iterable[str] | None) -> list[str]:
    """The subscribed event types, each once, in the catalogue's order; empty means every event."""
    chosen = list(events or [])
    unknown = sorted(set(chosen) - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(fields={"events": [_("Unknown event type: %(types)s.") % {"types": ", ".join(unknown)}]})
    return [event_type for event_type in EVENT_TYPES if event_type in chosen]


def endpoint_create(
    *,
    merchant: Merchant,
    livemode: bool,
    url: str,
    description: str = "",
    events: Iterable[str] | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint with a new secret. Returns (endpoint, secret): the only time the secret is handed out."""
    url = endpoint_url_check(url=url)
    events = endpoint_events_check(events=events)
    with transaction.atomic():
        # Serialises endpoint creation per merchant so the cap holds (NO KEY: inserts elsewhere are not blocked).
        list(Merchant.objects.select_for_update(no_key=True).filter(pk=merchant.pk).values_list("pk"))
        if WebhookEndpoint.objects.for_merchant(merchant).filter(livemode=livemode).count() >= MAX_ENDPOINTS_PER_MODE:
            raise Unprocessable(
                _("You have %(n)s webhook endpoints in this mode already; delete one first.")
                % {"n": MAX_ENDPOINTS_PER_MODE},
                code="too_many_endpoints",
            )
        secret = new_secret()
        endpoint = WebhookEndpoint.objects.for_merchant(merchant).create(
            livemode=livemode,
            url=url,
            description=(description or "").strip()[:200],
            events=events,
            secret=secret,
            enabled=enabled,
            disabled_reason="" if enabled else WebhookEndpoint.DisabledReason.MANUAL,
        )
    return endpoint, secret


def endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, description: str, events: Iterable[str] | None
) -> WebhookEndpoint:
    """Change where and what an endpoint receives. Deliveries already waiting go to the new URL."""
    endpoint.url = endpoint_url_check(url=url)
    endpoint.events = endpoint_events_check(events=events)
    endpoint.description = (description or "").strip()[:200]
    endpoint.save(update_fields=["url", "events", "description"])
    return endpoint


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Turn an endpoint on again; its failure clock starts over. Deliveries that failed meanwhile stay failed
    (resend them from the deliveries page)."""
    WebhookEndpoint.objects.for_merchant(endpoint.merchant_id).filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", failing_since=None
    )
    endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, "", None
    return endpoint


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str = WebhookEndpoint.DisabledReason.MANUAL) -> bool:
    """Turn an endpoint off: nothing new is stored for it and its waiting deliveries fail. Returns whether this
    call turned it off (False when it already was), so only one caller notifies anyone."""
    if reason not in WebhookEndpoint.DisabledReason.values or not reason:
        raise ValueError(f"unknown disabled reason {reason!r}")
    with transaction.atomic():
        changed = (
            WebhookEndpoint.objects.for_merchant(endpoint.merchant_id)
            .filter(pk=endpoint.pk, enabled=True)
            .update(enabled=False, disabled_reason=reason)
        )
        WebhookDelivery.objects.for_merchant(endpoint.merchant_id).filter(
            endpoint_id=endpoint.pk, status=WebhookDelivery.Status.PENDING
        ).update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error=_("The endpoint was disabled."))
    if changed:
        endpoint.enabled, endpoint.disabled_reason = False, reason
    return bool(changed)


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret, returned once. For 24 hours every request is signed with both the new and the old secret,
    so the shop can switch without losing a webhook."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.for_merchant(endpoint.merchant_id).select_for_update().get(pk=endpoint.pk)
        secret = new_secret()
        endpoint.previous_secret, endpoint.secret = endpoint.secret, secret
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint, secret


def endpoint_delete(*, endpoint: WebhookEndpoint) -> bool:
    """Delete an endpoint with its deliveries and their attempts (the events themselves stay). The row is locked
    first: an event being emitted to it right now (webhook_emit share-locks it) commits, then its deliveries are
    deleted with the rest. Returns False when it was already gone (a concurrent delete won), so that only one of
    several simultaneous deletes says it deleted it."""
    endpoints = WebhookEndpoint.objects.for_merchant(endpoint.merchant_id)
    with transaction.atomic():
        if endpoints.select_for_update().filter(pk=endpoint.pk).first() is None:
            return False
        endpoints.filter(pk=endpoint.pk).delete()
    return True


def endpoint_signing_secrets(*, endpoint: WebhookEndpoint) -> list[str]:
    secrets_now = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > timezone.now():
        secrets_now.append(endpoint.previous_secret)
    return secrets_now


def endpoint_disabled_notify(*, merchant_id: int, endpoint_id: int) -> int:
    """Email the merchant's owners that an endpoint was turned off automatically. Returns the emails sent."""
    endpoint = WebhookEndpoint.objects.for_merchant(merchant_id).select_related("merchant").filter(pk=endpoint_id)
    endpoint = endpoint.first()
    if endpoint is None or endpoint.enabled:
        return 0
    merchant = endpoint.merchant
    owners = (
        Membership.objects.for_merchant(merchant)
        .filter(role=Membership.Role.OWNER, user__is_active=True)
        .select_related("user")
    )
    recipients = sorted({membership.user.email for membership in owners})
    if not recipients:
        return 0
    last = (
        WebhookDelivery.objects.for_merchant(merchant)
        .filter(endpoint=endpoint, last_attempt_at__isnull=False)
        .order_by("-last_attempt_at")
        .first()
    )
    with translation.override(merchant.default_language):
        context = {
            "merchant": merchant,
            "endpoint": endpoint,
            "reason": endpoint.get_disabled_reason_display(),
            "last_error": last.last_error if last else "",
            "failing_since": endpoint.failing_since,
            "admin_url": settings.SITE_URL + reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
        }
        message = EmailMultiAlternatives(
            subject=single_line(_("[Referral SaaS] Webhooks to %(url)s are turned off") % {"url": endpoint.url[:80]}),
            body=render_to_string("webhooks/emails/endpoint_disabled.txt", context),
            to=recipients,
        )
        message.attach_alternative(render_to_string("webhooks/emails/endpoint_disabled.html", context), "text/html")
    message.send()
    logger.info("webhook endpoint disabled, owners notified", extra={"endpoint_id": endpoint.pk})
    return len(recipients)
