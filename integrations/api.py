"""Shop API: Zapier REST hooks (subscribe, unsubscribe, sample events), with the shop's API key like the rest of
the API. The mode (live or test) comes from the key."""

from __future__ import annotations

from drf_spectacular.plumbing import build_array_type, build_object_type
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from integrations.zapier import zapier_hook_subscribe, zapier_hook_unsubscribe, zapier_samples
from referral_saas.api import TenantAPIView
from referral_saas.errors import ValidationFailed
from referral_saas.schema import error_response
from referral_saas.webhooks.models import EVENT_TYPES
from rewards.api.conversions import CONVERSION_EXAMPLE
from rewards.serializers import REWARD_EXAMPLE
from tracking.api import PARTICIPANT_EXAMPLE, REFERRAL_EXAMPLE

EXAMPLES = {
    "participant.created": PARTICIPANT_EXAMPLE,
    "referral.created": REFERRAL_EXAMPLE,
    "conversion.attributed": CONVERSION_EXAMPLE,
    "fraud.flagged": {
        "referral_id": 7,
        "order_id": "1001",
        "program": "friends",
        "fraud": {"score": 80, "decision": "review", "signals": ["same_ip"]},
    },
    **{
        event: {**REWARD_EXAMPLE, "status": event.removeprefix("reward.")}
        for event in ("reward.approved", "reward.issued", "reward.voided", "reward.clawed_back")
    },
}


class HookSubscribeApi(TenantAPIView):
    @extend_schema_serializer(component_name="HookSubscribe")
    class InputSerializer(serializers.Serializer):
        target_url = serializers.URLField(max_length=2000, help_text="Where Zapier wants the event (hooks.zapier.com).")
        event = serializers.ChoiceField(choices=EVENT_TYPES)

    @extend_schema_serializer(component_name="Hook")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        target_url = serializers.CharField(source="url")
        event = serializers.SerializerMethodField()

        def get_event(self, endpoint) -> str:
            return endpoint.events[0]

    @extend_schema(
        operation_id="hooks_subscribe",
        summary="Subscribe a Zapier REST hook",
        description="Zapier calls this when a Zap is turned on: events of `event` are POSTed to `target_url` (signed "
        "per Standard Webhooks, retried like every webhook). A target answering 410 Gone is unsubscribed.",
        request=InputSerializer,
        responses={201: OutputSerializer},
        examples=[
            OpenApiExample(
                "Subscribe",
                request_only=True,
                value={"target_url": "https://hooks.zapier.com/hooks/standard/1/abc/", "event": "reward.issued"},
            ),
            OpenApiExample(
                "Subscribed",
                response_only=True,
                value={
                    "id": 12,
                    "target_url": "https://hooks.zapier.com/hooks/standard/1/abc/",
                    "event": "reward.issued",
                },
            ),
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = zapier_hook_subscribe(
            merchant=request.merchant,
            livemode=request.livemode,
            target_url=data.validated_data["target_url"],
            event=data.validated_data["event"],
        )
        return Response(self.OutputSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class HookDetailApi(TenantAPIView):
    @extend_schema_serializer(component_name="HookDeleted")
    class DeletedOutput(serializers.Serializer):
        id = serializers.IntegerField()
        deleted = serializers.BooleanField()

    @extend_schema(
        operation_id="hooks_unsubscribe",
        summary="Unsubscribe a Zapier REST hook",
        description="Zapier calls this when the Zap is turned off. 404 for an id that is no hook subscription.",
        responses={200: DeletedOutput},
        examples=[OpenApiExample("Unsubscribed", response_only=True, value={"id": 12, "deleted": True})],
    )
    def delete(self, request, hook_id: int):
        zapier_hook_unsubscribe(merchant=request.merchant, livemode=request.livemode, hook_id=hook_id)
        return Response(self.DeletedOutput({"id": hook_id, "deleted": True}).data)


class HookSampleApi(TenantAPIView):
    @extend_schema(
        operation_id="hooks_sample",
        summary="Sample events of a type (for the Zap editor)",
        description="`?event=<type>`: the latest events of this type of the key's mode, newest first (at most 3), "
        "else an example: a list of the objects the hook receives as `data`.",
        parameters=[OpenApiParameter("event", str, enum=list(EVENT_TYPES), required=True)],
        responses={
            200: build_array_type(build_object_type(additionalProperties=True)),
            400: error_response(400, "`event` is missing or no event type."),
        },
        examples=[OpenApiExample("reward.issued", response_only=True, value=[EXAMPLES["reward.issued"]])],
    )
    def get(self, request):
        event = request.query_params.get("event", "")
        if event not in EVENT_TYPES:
            raise ValidationFailed(fields={"event": [f"Name an event type: {', '.join(EVENT_TYPES)}."]})
        samples = zapier_samples(merchant=request.merchant, livemode=request.livemode, event=event, examples=EXAMPLES)
        return Response(samples)
