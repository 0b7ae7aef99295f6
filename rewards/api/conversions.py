"""Shop API: conversions (orders). They answer with the order's fraud score and rewards, so they live here, above
tracking (which records and attributes them) and fraud (which scores them). Refunds stay tracking's views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from fraud import selectors as fraud_selectors
from referral_saas.api import TenantAPIView, filter_parameters, page_example, page_of, paginate
from referral_saas.errors import NotFound
from referral_saas.fields import AmountField, CurrencyField, KeyField, check_amount_precision
from referral_saas.filters import UtcIsoDateTimeFilter
from referral_saas.schema import error_response
from referral_saas.serializers import FastSerializer
from rewards.selectors import rewards_for_conversions
from rewards.serializers import REWARD_EXAMPLE, ConversionOutput
from tracking import selectors, services
from tracking.models import Conversion, Referral
from tracking.serializers import CustomerInput

EARLIEST_ORDER = datetime(2000, 1, 1, tzinfo=UTC)

CONVERSION_EXAMPLE = {
    "id": 1001,
    "order_id": "1001",
    "amount": "129.90",
    "currency": "PLN",
    "refunded_amount": "0.00",
    "program_amount": "129.90",
    "program_currency": "PLN",
    "program_refunded_amount": "0.00",
    "exchange_rate": None,
    "status": "attributed",
    "attributed": True,
    "rejection_reason": "",
    "attribution_reason": "",
    "program": "friends",
    "referral": {"id": 7, "status": "converted", "referrer": {"id": 42, "external_id": "c-42"}, "code": "ANNA-7K3Q"},
    "is_new_customer": True,
    "customer": {"external_id": "c-77", "email": "b@c.pl"},
    "fraud": {
        "score": 15,
        "decision": "approve",
        "signals": [{"name": "fast_click_to_order", "weight": 15, "detail": "Ordered 12 s after the referral click."}],
    },
    "rewards": [REWARD_EXAMPLE],
    "occurred_at": "2026-11-23T10:30:00Z",
    "created_at": "2026-11-23T10:30:01Z",
}


class ConversionFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug")
    status = django_filters.ChoiceFilter(choices=Conversion.Status.choices)
    attribution_reason = django_filters.ChoiceFilter(
        field_name="rejection_reason",
        choices=Referral.Reason.choices,
        help_text="Orders not attributed for this reason, e.g. currency_mismatch.",
    )
    customer_external_id = django_filters.CharFilter()
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Conversion
        fields = [
            "program", "status", "attribution_reason", "customer_external_id", "occurred_after", "occurred_before",
        ]  # fmt: skip


def _conversion_output(request, *, new: bool = False):
    """ConversionOutput with what it needs besides the rows loaded once for all of them (no query per row).
    A conversion created by this request has no fraud assessment yet: nothing to load."""

    def serializer(instance, many: bool = False):
        rows = instance if many else [instance]
        scored = [] if new else [c.pk for c in rows if c.referral_id]
        fraud = fraud_selectors.assessments_for_conversions(merchant=request.merchant, conversion_ids=scored)
        rewards = rewards_for_conversions(merchant=request.merchant, conversion_ids=scored)
        return ConversionOutput(instance, many=many, context={"fraud": fraud, "rewards": rewards})

    return serializer


class ConversionListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="ConversionCreate")
    class InputSerializer(FastSerializer):
        order_id = KeyField()
        amount = AmountField()
        currency = CurrencyField()
        customer = CustomerInput(required=False)
        code = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        click_id = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
        occurred_at = serializers.DateTimeField(required=False)
        ip = serializers.IPAddressField(required=False, allow_null=True, allow_blank=True)
        user_agent = serializers.CharField(max_length=1024, required=False, allow_blank=True)
        payment_fingerprint = serializers.CharField(max_length=128, required=False, allow_blank=True)
        address_hash = serializers.CharField(max_length=128, required=False, allow_blank=True)
        device_id = serializers.CharField(
            max_length=128,
            required=False,
            allow_blank=True,
            help_text="The buyer's device id: referral.js's `ReferralSaaS.deviceId()`, sent by `fillForm` as the "
            "hidden input `referral_device_id` (fraud check shared_device).",
        )
        ga_client_id = serializers.RegexField(
            r"^[0-9]{1,20}\.[0-9]{1,20}$",
            max_length=64,
            required=False,
            allow_blank=True,
            help_text="The buyer's Google Analytics client id: referral.js's `ReferralSaaS.gaClientId()` (from the "
            "shop's `_ga` cookie), sent by `fillForm` as `referral_ga_client_id`. Sent to a connected GA4 with the "
            "referral_purchase event.",
        )

        def validate_occurred_at(self, value):
            now = timezone.now()
            if not (EARLIEST_ORDER <= value <= now + timedelta(days=1)):
                raise serializers.ValidationError("Must be a time between 2000-01-01 and now (UTC).")
            return value

        def validate(self, attrs):
            check_amount_precision(attrs["amount"], attrs["currency"])
            return attrs

    @extend_schema(
        operation_id="conversions_create",
        summary="Report an order",
        description="Stores the order and attributes it (click id, else code, else the customer's earlier referral). "
        "201 for a new order; 200 with the stored conversion when this `order_id` was reported before. "
        "Orders without a referral are stored too: they are the baseline of the KPIs.",
        request=InputSerializer,
        responses={201: ConversionOutput, 200: ConversionOutput},
        examples=[
            OpenApiExample(
                "Order with a code",
                request_only=True,
                value={
                    "order_id": "1001",
                    "amount": "129.90",
                    "currency": "PLN",
                    "customer": {"external_id": "c-77", "email": "b@c.pl"},
                    "code": "ANNA-7K3Q",
                    "ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0 …",
                    "device_id": "Qm3xV0c2L9hT8pZk1rWs4A",
                },
            ),
            OpenApiExample("Attributed conversion", response_only=True, value=CONVERSION_EXAMPLE),
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = values.get("customer") or {}
        conversion, created = services.conversion_record(
            merchant=request.merchant,
            livemode=request.livemode,
            order_id=values["order_id"],
            amount=values["amount"],
            currency=values["currency"],
            customer_external_id=customer.get("external_id"),
            customer_email=customer.get("email"),
            code=values.get("code"),
            click_id=values.get("click_id"),
            occurred_at=values.get("occurred_at"),
            ip=values.get("ip"),
            user_agent=values.get("user_agent", ""),
            payment_fingerprint=values.get("payment_fingerprint", ""),
            address_hash=values.get("address_hash", ""),
            device_id=values.get("device_id", ""),
            ga_client_id=values.get("ga_client_id", ""),
        )
        return Response(
            _conversion_output(request, new=created)(conversion).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="conversions_list",
        summary="List orders",
        parameters=filter_parameters(ConversionFilter),
        responses={200: page_of(ConversionOutput), 400: error_response(400, "A filter's value is not valid.")},
        examples=[OpenApiExample("A page", response_only=True, value=page_example(CONVERSION_EXAMPLE))],
    )
    def get(self, request):
        conversions = self.filtered(
            ConversionFilter, selectors.conversion_list(merchant=request.merchant, livemode=request.livemode)
        )
        return paginate(self, conversions, _conversion_output(request))


class ConversionDetailApi(TenantAPIView):
    @extend_schema(
        operation_id="conversions_retrieve",
        summary="An order by order id",
        responses=ConversionOutput,
        examples=[OpenApiExample("Conversion", response_only=True, value=CONVERSION_EXAMPLE)],
    )
    def get(self, request, order_id: str):
        conversion = (
            selectors.conversion_list(merchant=request.merchant, livemode=request.livemode)
            .filter(order_id=order_id)
            .first()
        )
        if conversion is None:
            raise NotFound("No order with this order_id.")
        return Response(_conversion_output(request)(conversion).data)
