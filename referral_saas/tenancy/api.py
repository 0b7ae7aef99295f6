"""Shop API views for tenancy."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from referral_saas.api import TenantAPIView


class MeApi(TenantAPIView):
    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        class MerchantSerializer(serializers.Serializer):
            slug = serializers.CharField()
            name = serializers.CharField()
            default_currency = serializers.CharField()
            timezone = serializers.CharField()
            default_language = serializers.CharField()

        merchant = MerchantSerializer()
        mode = serializers.ChoiceField(choices=["live", "test"])
        key = serializers.CharField(help_text="The key's masked form, e.g. rk_live_…a1b2")

    @extend_schema(
        operation_id="me",
        summary="Who am I: the merchant and mode of this API key",
        responses=OutputSerializer,
        examples=[
            OpenApiExample(
                "Live key",
                response_only=True,
                value={
                    "merchant": {
                        "slug": "demo-shop",
                        "name": "Demo Shop",
                        "default_currency": "PLN",
                        "timezone": "Europe/Warsaw",
                        "default_language": "pl",
                    },
                    "mode": "live",
                    "key": "rk_live_…a1b2",
                },
            )
        ],
    )
    def get(self, request):
        data = {"merchant": request.merchant, "mode": request.auth.mode, "key": request.auth.masked}
        return Response(self.OutputSerializer(data).data)
