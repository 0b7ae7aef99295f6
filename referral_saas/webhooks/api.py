"""Shop API: webhook endpoints (create, list, read, delete). The mode comes from the API key."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from referral_saas.api import TenantAPIView, page_example, page_of, page_parameters, paginate
from referral_saas.errors import NotFound
from referral_saas.webhooks import selectors, services
from referral_saas.webhooks.models import EVENT_TYPES
from referral_saas.webhooks.serializers import (
    CREATED_EXAMPLE,
    ENDPOINT_EXAMPLE,
    WebhookEndpointCreatedOutput,
    WebhookEndpointOutput,
)


class WebhookEndpointListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="WebhookEndpointCreate")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=2000, help_text="http:// or https://, on a public address.")
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EVENT_TYPES),
            required=False,
            allow_empty=True,
            max_length=50,
            help_text="Event types to receive; leave out or empty for all of them.",
        )

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Add a webhook endpoint",
        description="Events of the key's mode (live or test) are POSTed to `url`, signed per Standard Webhooks "
        "with the returned `secret` (shown only here). A URL on a loopback, private, link-local or otherwise "
        "non-public address is a 400. At most 20 endpoints per mode (422 `too_many_endpoints`). A retry with the "
        "same `Idempotency-Key` replays the endpoint with `secret: null`: the secret is shown once and never "
        "stored with the replay.",
        request=InputSerializer,
        responses={201: WebhookEndpointCreatedOutput},
        examples=[
            OpenApiExample(
                "Endpoint",
                request_only=True,
                value={
                    "url": "https://shop.example/webhooks/referrals",
                    "description": "Order system",
                    "events": ["participant.created", "reward.issued"],
                },
            ),
            OpenApiExample("Created, with its secret", response_only=True, value=CREATED_EXAMPLE),
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, _secret = services.endpoint_create(
            merchant=request.merchant,
            livemode=request.livemode,
            url=data.validated_data["url"],
            description=data.validated_data.get("description", ""),
            events=data.validated_data.get("events"),
        )
        response = Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)
        # What an Idempotency-Key stores and replays: the endpoint without its secret (see referral_saas.idempotency).
        response.replay_data = {**response.data, "secret": None}
        return response

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List webhook endpoints",
        description="The endpoints of the key's mode, newest first. Secrets are not listed.",
        parameters=page_parameters(),
        responses=page_of(WebhookEndpointOutput),
        examples=[OpenApiExample("A page", response_only=True, value=page_example(ENDPOINT_EXAMPLE))],
    )
    def get(self, request):
        endpoints = selectors.endpoint_list(merchant=request.merchant, livemode=request.livemode)
        return paginate(self, endpoints, WebhookEndpointOutput)


class WebhookEndpointDetailApi(TenantAPIView):
    @extend_schema_serializer(component_name="WebhookEndpointDeleted")
    class DeletedOutput(serializers.Serializer):
        id = serializers.IntegerField()
        deleted = serializers.BooleanField()

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="A webhook endpoint",
        responses=WebhookEndpointOutput,
        examples=[OpenApiExample("Endpoint", response_only=True, value=ENDPOINT_EXAMPLE)],
    )
    def get(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_get(merchant=request.merchant, livemode=request.livemode, endpoint_id=endpoint_id)
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        summary="Delete a webhook endpoint",
        description="Nothing more is sent to it, including retries that were waiting.",
        responses={200: DeletedOutput},
        examples=[OpenApiExample("Deleted", response_only=True, value={"id": 5, "deleted": True})],
    )
    def delete(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_get(merchant=request.merchant, livemode=request.livemode, endpoint_id=endpoint_id)
        if not services.endpoint_delete(endpoint=endpoint):
            raise NotFound("No webhook endpoint with this id.")  # a simultaneous delete won
        return Response(self.DeletedOutput({"id": endpoint_id, "deleted": True}).data)
