"""Programs as the shop API shows them."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers


class ProgramOutput(serializers.Serializer):
    @extend_schema_serializer(component_name="ProgramVariant")
    class VariantOutput(serializers.Serializer):
        name = serializers.CharField()
        weight = serializers.IntegerField()

    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    live = serializers.SerializerMethodField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(allow_null=True)
    currency = serializers.CharField()
    default_language = serializers.CharField()
    landing_url = serializers.URLField()
    attribution_window_days = serializers.IntegerField()
    attribution_model = serializers.CharField()
    new_customers_only = serializers.BooleanField()
    referrer_offer = serializers.CharField()
    referee_offer = serializers.CharField()
    terms = serializers.CharField()
    good_fit = serializers.CharField()
    variants = VariantOutput(many=True)
    portal_url = serializers.SerializerMethodField()

    def get_live(self, program) -> bool:
        return program.is_live()

    def get_portal_url(self, program) -> str:
        return f"{settings.SITE_URL}/p/{program.merchant.slug}/{program.slug}/"
