"""How a webhook endpoint looks in the shop API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from referral_saas.webhooks.models import EVENT_TYPES, WebhookEndpoint


@extend_schema_serializer(component_name="WebhookEndpoint")
class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField(allow_blank=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), help_text="Subscribed event types; empty means all."
    )
    enabled = serializers.BooleanField()
    disabled_reason = serializers.ChoiceField(
        choices=WebhookEndpoint.DisabledReason.values,
        allow_blank=True,
        help_text="Why a disabled endpoint is off: `manual`, `gone` (it answered 410) or `failing` (3 days of "
        "failures); empty while enabled.",
    )
    failing_since = serializers.DateTimeField(
        allow_null=True, help_text="The first failed delivery since the last successful one."
    )
    livemode = serializers.BooleanField()
    secret_hint = serializers.CharField(help_text="The end of the signing secret, to tell secrets apart.")
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="WebhookEndpointCreated")
class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    secret = serializers.CharField(
        allow_null=True,
        help_text="The signing secret (`whsec_...`). Shown only in this response: store it now. `null` when this "
        "response is a replay of an earlier request with the same `Idempotency-Key` (header `Idempotent-Replayed: "
        "true`): the secret is not kept with stored responses. If the first response was lost, rotate the secret "
        "in the admin (Webhooks, action 'Rotate the signing secret') or delete the endpoint and create it again.",
    )


ENDPOINT_EXAMPLE = {
    "id": 5,
    "url": "https://shop.example/webhooks/referrals",
    "description": "Order system",
    "events": ["participant.created", "reward.issued"],
    "enabled": True,
    "disabled_reason": "",
    "failing_since": None,
    "livemode": True,
    "secret_hint": "whsec_…Qk3Z",
    "created_at": "2026-11-23T10:15:00Z",
}
CREATED_EXAMPLE = {**ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
