"""Zapier REST hooks: a Zap subscribes its target URL to one of our events with the shop's API key and unsubscribes
when it is turned off (https://docs.zapier.com/platform/build/hook-trigger). A subscription is a webhook endpoint of
ours (referral_saas.webhooks) for that one event, so it is signed with Standard Webhooks and retried like every
other; a target that answers 410 Gone has the subscription removed (the endpoint is deleted, as Zapier's REST-hook
contract says: referral_saas.webhooks.services.delivery), while a shop's own endpoints are only turned off on 410.
A sample endpoint per event type gives the Zap editor the event's shape."""

from __future__ import annotations

from django.db import transaction

from referral_saas.errors import NotFound
from referral_saas.webhooks.models import REST_HOOK_DESCRIPTION, WebhookEndpoint, WebhookMessage
from referral_saas.webhooks.services import endpoint_create, endpoint_delete

HOOK_DESCRIPTION = REST_HOOK_DESCRIPTION


def zapier_hook_subscribe(*, merchant, livemode: bool, target_url: str, event: str) -> WebhookEndpoint:
    """A subscription of `target_url` to `event` (the service checks the URL and the event like any endpoint's)."""
    endpoint, _secret = endpoint_create(
        merchant=merchant, livemode=livemode, url=target_url, description=f"{HOOK_DESCRIPTION}: {event}", events=[event]
    )
    return endpoint


def zapier_hook_unsubscribe(*, merchant, livemode: bool, hook_id: int) -> None:
    """Delete a subscription made through the hooks API (never another endpoint of the shop's)."""
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.for_merchant(merchant)
            .filter(pk=hook_id, livemode=livemode, description__startswith=HOOK_DESCRIPTION)
            .first()
        )
        if endpoint is None or not endpoint_delete(endpoint=endpoint):
            raise NotFound("No hook subscription with this id.")


def zapier_samples(*, merchant, livemode: bool, event: str, examples: dict[str, dict], limit: int = 3) -> list[dict]:
    """The latest events of this type the shop had (newest first), else our documented example: what the Zap
    editor shows to map fields from."""
    latest = list(
        WebhookMessage.objects.for_merchant(merchant)
        .filter(livemode=livemode, type=event)
        .order_by("-created_at")
        .values_list("payload", flat=True)[:limit]
    )
    return latest or [examples[event]]
