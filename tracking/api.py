"""Shop API: codes, referrals (a friend signed up), conversions (orders) and refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django_filters
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from fraud import selectors as fraud_selectors
from fraud.api import FraudSummaryOutput
from programs.fields import CustomerEmailField
from referral_saas.api import TenantAPIView, filter_parameters, page_example, page_of, paginate
from referral_saas.errors import NotFound
from referral_saas.fields import AmountField, CurrencyField, KeyField, MoneyOutputField, check_amount_precision
from referral_saas.filters import UtcIsoDateTimeFilter
from referral_saas.money import quantize
from referral_saas.schema import error_response
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from rewards.selectors import rewards_for_conversions
from rewards.serializers import REWARD_EXAMPLE, RewardOutput
from tracking import selectors, services
from tracking.models import Conversion, Referral, Refund

EARLIEST_ORDER = datetime(2000, 1, 1, tzinfo=UTC)
LANGUAGES = [code for code, _name in LANGUAGE_CHOICES]

# --- codes ------------------------------------------------------------------------------------------------------


class CodeCheckApi(TenantAPIView):
    @extend_schema_serializer(component_name="CodeCheck")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="CodeReferrer")
        class Referrer(serializers.Serializer):
            id = serializers.IntegerField()
            name = serializers.CharField(help_text="First name and initial only.")

        code = serializers.CharField()
        valid = serializers.BooleanField()
        reason = serializers.CharField(allow_null=True, help_text="Why an existing code is not valid now.")
        program = serializers.CharField()
        referrer = Referrer()
        referee_offer = serializers.CharField(
            help_text="What the friend gets: the referrer's A/B variant's offer, else the program's."
        )

    @extend_schema(
        operation_id="codes_check",
        summary="Check a code typed at checkout",
        parameters=[
            OpenApiParameter(
                "language",
                enum=LANGUAGES,
                required=False,
                description="The offer in this language where the program has texts in it; otherwise (absent, or a "
                "language we do not have) the program's own text. Never an error: a checkout must not fail on it.",
            )
        ],
        description="404 for a code this merchant does not have. `valid: false` (with a reason) for a disabled code, "
        "a blocked referrer or a program that is not running.",
        responses=OutputSerializer,
        examples=[
            OpenApiExample(
                "Valid code",
                response_only=True,
                value={
                    "code": "ANNA-7K3Q",
                    "valid": True,
                    "reason": None,
                    "program": "friends",
                    "referrer": {"id": 42, "name": "Anna K."},
                    "referee_offer": "10% off your first order",
                },
            )
        ],
    )
    def get(self, request, code: str):
        language = request.query_params.get("language")
        check = selectors.code_check(
            merchant=request.merchant,
            livemode=request.livemode,
            code=code,
            language=language if language in LANGUAGES else None,
        )
        if check is None:
            raise NotFound("Unknown referral code.")
        return Response(
            self.OutputSerializer(
                {
                    "code": check.code.code,
                    "valid": check.valid,
                    "reason": check.reason,
                    "program": check.program.slug,
                    "referrer": {"id": check.referrer.pk, "name": check.referrer.first_name_initial},
                    "referee_offer": check.referee_offer,
                }
            ).data
        )


# --- shared input -----------------------------------------------------------------------------------------------


class CustomerInput(serializers.Serializer):
    external_id = KeyField(required=False, allow_null=True, allow_blank=True)
    email = CustomerEmailField(required=False, allow_null=True, allow_blank=True)


def _require_code_or_click(attrs):
    if not (attrs.get("code") or attrs.get("click_id")):
        raise serializers.ValidationError({"code": ["Give a code or a click_id."]})


# --- referrals --------------------------------------------------------------------------------------------------


class ReferralOutput(serializers.Serializer):
    @extend_schema_serializer(component_name="ReferralReferrer")
    class Referrer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField(allow_null=True)

    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug")
    status = serializers.CharField()
    rejection_reason = serializers.CharField(allow_blank=True)
    code = serializers.CharField(source="code.code")
    referrer = Referrer()
    customer = serializers.SerializerMethodField()
    variant = serializers.CharField(source="variant.name", allow_null=True, default=None)
    touched_at = serializers.DateTimeField()
    signed_up_at = serializers.DateTimeField(allow_null=True)
    converted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_customer(self, referral) -> dict:
        return {"external_id": referral.referee_external_id, "email": referral.referee_email}


REFERRAL_EXAMPLE = {
    "id": 7,
    "program": "friends",
    "status": "signed_up",
    "rejection_reason": "",
    "code": "ANNA-7K3Q",
    "referrer": {"id": 42, "external_id": "c-42"},
    "customer": {"external_id": "c-77", "email": "b@c.pl"},
    "variant": None,
    "touched_at": "2026-11-23T10:15:00Z",
    "signed_up_at": "2026-11-23T10:20:00Z",
    "converted_at": None,
    "created_at": "2026-11-23T10:20:00Z",
}


class ReferralFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug")
    status = django_filters.ChoiceFilter(choices=Referral.Status.choices)
    referrer = django_filters.NumberFilter(field_name="referrer_id")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Referral
        fields = ["program", "status", "referrer", "created_after", "created_before"]


def _filtered(filterset_class, request, queryset):
    filterset = filterset_class(request.query_params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


class ReferralListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="ReferralCreate")
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=64, required=False, allow_blank=True)
        click_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
        customer = CustomerInput()

        def validate(self, attrs):
            _require_code_or_click(attrs)
            if not (attrs["customer"].get("external_id") or attrs["customer"].get("email")):
                raise serializers.ValidationError({"customer": ["Give the customer's external_id or email."]})
            return attrs

    @extend_schema(
        operation_id="referrals_create",
        summary="A referred friend signed up",
        description="Opens the friend's referral (status `signed_up`; `rejected` with a reason for a self-referral). "
        "201 when new, 200 when this friend already has a referral in the program.",
        request=InputSerializer,
        responses={201: ReferralOutput, 200: ReferralOutput},
        examples=[
            OpenApiExample(
                "Sign-up",
                request_only=True,
                value={"code": "ANNA-7K3Q", "customer": {"external_id": "c-77", "email": "b@c.pl"}},
            ),
            OpenApiExample("Referral", response_only=True, value=REFERRAL_EXAMPLE),
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        referral, created = services.referral_record_signup(
            merchant=request.merchant,
            livemode=request.livemode,
            customer_external_id=data.validated_data["customer"].get("external_id"),
            customer_email=data.validated_data["customer"].get("email"),
            code=data.validated_data.get("code"),
            click_id=data.validated_data.get("click_id"),
        )
        return Response(
            ReferralOutput(referral).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="referrals_list",
        summary="List referrals",
        parameters=filter_parameters(ReferralFilter),
        responses={200: page_of(ReferralOutput), 400: error_response(400, "A filter's value is not valid.")},
        examples=[OpenApiExample("A page", response_only=True, value=page_example(REFERRAL_EXAMPLE))],
    )
    def get(self, request):
        queryset = Referral.objects.for_merchant(request.merchant).filter(livemode=request.livemode)
        queryset = queryset.select_related("program", "code", "referrer", "variant")
        return paginate(self, _filtered(ReferralFilter, request, queryset), ReferralOutput)


# --- conversions ------------------------------------------------------------------------------------------------


class ConversionOutput(serializers.Serializer):
    @extend_schema_serializer(component_name="ConversionReferral")
    class ReferralSummary(serializers.Serializer):
        @extend_schema_serializer(component_name="ConversionReferrer")
        class Referrer(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField(allow_null=True)

        id = serializers.IntegerField()
        status = serializers.CharField()
        referrer = Referrer()
        code = serializers.CharField(source="code.code")

    id = serializers.IntegerField()
    order_id = serializers.CharField()
    amount = MoneyOutputField(help_text="As the shop reported it, in `currency`.")
    currency = serializers.CharField()
    refunded_amount = MoneyOutputField(help_text="Refunded so far, in `currency`.")
    program_amount = MoneyOutputField(
        currency_of=lambda conversion: conversion.program_currency or None,
        allow_null=True,
        help_text="The order in the program's currency (`program_currency`): what rewards and the program's stats "
        "count. The same as `amount` for an order in the program's currency; converted at `exchange_rate` for one in "
        "another currency. null when the order is not linked to a program.",
    )
    program_currency = serializers.SerializerMethodField()
    program_refunded_amount = serializers.SerializerMethodField()
    exchange_rate = serializers.SerializerMethodField()
    status = serializers.CharField()
    attributed = serializers.BooleanField()
    rejection_reason = serializers.CharField(allow_blank=True, help_text="The same as `attribution_reason`.")
    attribution_reason = serializers.ChoiceField(
        source="rejection_reason",
        choices=Referral.Reason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why the order is not attributed; empty when it is. `currency_mismatch`: the order is in another "
        "currency than the program and the merchant has no exchange rate for it on the order's day (the order is "
        "stored, and is attributed to no one); `program_inactive`, `outside_window`: the referral did not count then; "
        "`self_referral`, `blocked_referrer`, `existing_customer`, `fraud`, `manual`: referred, but rejected.",
    )
    program = serializers.CharField(source="program.slug", allow_null=True, default=None)
    referral = ReferralSummary(allow_null=True)
    is_new_customer = serializers.BooleanField()
    customer = serializers.SerializerMethodField()
    fraud = serializers.SerializerMethodField()
    rewards = serializers.SerializerMethodField()
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()

    def get_customer(self, conversion) -> dict:
        return {"external_id": conversion.customer_external_id, "email": conversion.customer_email}

    @extend_schema_field(
        {"type": "string", "nullable": True, "example": "PLN", "description": "The program's currency; null "
         "when the order is not linked to a program."}
    )  # fmt: skip
    def get_program_currency(self, conversion) -> str | None:
        return None if conversion.program_amount is None else conversion.program_currency

    @extend_schema_field(
        {"type": "string", "nullable": True, "example": "0.00", "description": "Refunded so far, in the program's "
         "currency: refunds convert at the order's own rate, so they never take back more than `program_amount`."}
    )  # fmt: skip
    def get_program_refunded_amount(self, conversion) -> str | None:
        if conversion.program_amount is None:
            return None
        return str(quantize(Decimal(conversion.program_refunded_amount), conversion.program_currency))

    @extend_schema_field(
        {"type": "string", "nullable": True, "example": "4.2875", "description": "The merchant's rate the order "
         "was converted at (program currency units for one unit of `currency`); null when no conversion was needed."}
    )  # fmt: skip
    def get_exchange_rate(self, conversion) -> str | None:
        return None if conversion.exchange_rate is None else f"{conversion.exchange_rate.normalize():f}"

    @extend_schema_field(FraudSummaryOutput(allow_null=True, help_text="null until the order is scored."))
    def get_fraud(self, conversion) -> dict | None:
        """The fraud assessment's summary; null until the order is scored (unattributed orders never are)."""
        if conversion.referral_id is None:
            return None
        scored = self.context.get("fraud")  # {conversion id: summary} loaded once by the view for a whole page
        if scored is None:
            scored = fraud_selectors.assessments_for_conversions(
                merchant=conversion.merchant_id, conversion_ids=[conversion.pk]
            )
        return scored.get(conversion.pk)

    @extend_schema_field(RewardOutput(many=True, help_text="Empty until a worker decides them."))
    def get_rewards(self, conversion) -> list:
        """The rewards this order paid (both sides), as the rewards API shows them."""
        if conversion.referral_id is None:
            return []
        decided = self.context.get("rewards")  # {conversion id: [reward, ...]} loaded once for a whole page
        if decided is None:
            decided = rewards_for_conversions(merchant=conversion.merchant_id, conversion_ids=[conversion.pk])
        return RewardOutput(decided.get(conversion.pk, []), many=True).data


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


def _conversion_queryset(request):
    return (
        Conversion.objects.for_merchant(request.merchant)
        .filter(livemode=request.livemode)
        .select_related("program", "referral__referrer", "referral__code")
    )


class ConversionListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="ConversionCreate")
    class InputSerializer(serializers.Serializer):
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
        conversions = _filtered(ConversionFilter, request, _conversion_queryset(request))
        return paginate(self, conversions, _conversion_output(request))


class ConversionDetailApi(TenantAPIView):
    @extend_schema(
        operation_id="conversions_retrieve",
        summary="An order by order id",
        responses=ConversionOutput,
        examples=[OpenApiExample("Conversion", response_only=True, value=CONVERSION_EXAMPLE)],
    )
    def get(self, request, order_id: str):
        conversion = _conversion_queryset(request).filter(order_id=order_id).first()
        if conversion is None:
            raise NotFound("No order with this order_id.")
        return Response(_conversion_output(request)(conversion).data)


REFUND_EXAMPLE = {
    "id": 3,
    "order_id": "1001",
    "refund_id": "r-1",
    "amount": "29.90",
    "currency": "PLN",
    "order_refunded_amount": "29.90",
    "created_at": "2026-11-24T09:00:00Z",
}


class RefundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    order_id = serializers.CharField(source="conversion.order_id")
    refund_id = serializers.CharField()
    amount = MoneyOutputField()
    currency = serializers.CharField()
    order_refunded_amount = MoneyOutputField(source="conversion.refunded_amount")
    created_at = serializers.DateTimeField()


class RefundCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="RefundCreate")
    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        refund_id = KeyField()
        reason = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(
        operation_id="refunds_create",
        summary="Report a full or partial refund of an order",
        description="201 for a new refund; 200 for a refund_id seen before (same amount); 422 when the refund is "
        "more than what remains of the order.",
        request=InputSerializer,
        responses={201: RefundOutput, 200: RefundOutput},
        examples=[
            OpenApiExample("Partial refund", request_only=True, value={"amount": "29.90", "refund_id": "r-1"}),
            OpenApiExample("Refund", response_only=True, value=REFUND_EXAMPLE),
        ],
    )
    def post(self, request, order_id: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund, created = services.refund_record(
            merchant=request.merchant,
            livemode=request.livemode,
            order_id=order_id,
            amount=data.validated_data["amount"],
            refund_id=data.validated_data["refund_id"],
            reason=data.validated_data.get("reason", ""),
        )
        refund.conversion.refresh_from_db(fields=["refunded_amount"])
        return Response(RefundOutput(refund).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="refunds_list",
        summary="Refunds of an order",
        responses=RefundOutput(many=True),
        examples=[OpenApiExample("Refunds", response_only=True, value=[REFUND_EXAMPLE])],
    )
    def get(self, request, order_id: str):
        conversion = _conversion_queryset(request).filter(order_id=order_id).first()
        if conversion is None:
            raise NotFound("No order with this order_id.")
        refunds = (
            Refund.objects.for_merchant(request.merchant).filter(conversion=conversion).select_related("conversion")
        )
        return Response(RefundOutput(refunds, many=True).data)
