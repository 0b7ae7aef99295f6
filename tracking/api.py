"""Shop API: participants (join, read: with their codes and links), codes, referrals (a friend signed up) and
refunds. Conversions, which answer with their fraud score and rewards, are the rewards app's API."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from programs import selectors as program_selectors
from programs.fields import CustomerEmailField
from programs.models import Participant
from referral_saas.api import TenantAPIView, filter_parameters, page_example, page_of, paginate
from referral_saas.errors import NotFound
from referral_saas.fields import AmountField, KeyField
from referral_saas.filters import UtcIsoDateTimeFilter
from referral_saas.schema import error_response
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from referral_saas.validators import validate_single_line
from tracking import selectors, services
from tracking.models import Referral, Refund
from tracking.serializers import CustomerInput, ParticipantOutput, ReferralOutput, RefundOutput

LANGUAGES = [code for code, _name in LANGUAGE_CHOICES]

# --- participants -----------------------------------------------------------------------------------------------


PARTICIPANT_EXAMPLE = {
    "id": 42,
    "program": "friends",
    "external_id": "c-42",
    "email": "a@b.pl",
    "name": "Ana",
    "language": "pl",
    "status": "active",
    "marketing_consent": False,
    "code": "ANA-7K3Q",
    "link": "https://referrals.example/r/ANA-7K3Q",
    "codes": [
        {
            "program": "friends",
            "code": "ANA-7K3Q",
            "link": "https://referrals.example/r/ANA-7K3Q",
            "status": "active",
            "variant": None,
        }
    ],
    "referred_by": None,
    "created_at": "2026-11-23T10:15:00Z",
}


def _with_codes(queryset):
    return queryset.prefetch_related("codes__program", "codes__variant")


class ParticipantListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="ParticipantUpsert")
    class InputSerializer(serializers.Serializer):
        program = serializers.SlugField(max_length=60)
        external_id = KeyField(required=False, allow_null=True, allow_blank=True)
        email = CustomerEmailField(required=False, allow_null=True, allow_blank=True)
        name = serializers.CharField(
            max_length=200, required=False, allow_blank=True, allow_null=True, validators=[validate_single_line]
        )
        language = serializers.ChoiceField(choices=LANGUAGES, required=False, allow_null=True)
        marketing_consent = serializers.BooleanField(required=False, allow_null=True)
        ip = serializers.IPAddressField(
            required=False, allow_null=True, allow_blank=True, help_text="The customer's IP (fraud checks; hashed)."
        )
        user_agent = serializers.CharField(max_length=1024, required=False, allow_blank=True)
        device_id = serializers.CharField(
            max_length=128, required=False, allow_blank=True, help_text="Your device cookie (fraud checks)."
        )

        def validate(self, attrs):
            if not (attrs.get("external_id") or attrs.get("email")):
                raise serializers.ValidationError({"external_id": ["Give an external_id or an email (or both)."]})
            return attrs

    @extend_schema(
        operation_id="participants_upsert",
        summary="Join a program (create or update a participant)",
        description="Finds the participant by `external_id`, else by normalised email; creates one otherwise. "
        "201 when created, 200 when the participant existed. The response carries their code and link.",
        request=InputSerializer,
        responses={201: ParticipantOutput, 200: ParticipantOutput},
        examples=[
            OpenApiExample(
                "Join",
                value={"program": "friends", "external_id": "c-42", "email": "a@b.pl", "name": "Ana", "language": "pl"},
                request_only=True,
            ),
            OpenApiExample("Participant", value=PARTICIPANT_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        program = program_selectors.program_get_by_slug(merchant=request.merchant, slug=data.validated_data["program"])
        participant, _code, created = services.participant_join(
            merchant=request.merchant,
            livemode=request.livemode,
            program=program,
            external_id=data.validated_data.get("external_id"),
            email=data.validated_data.get("email"),
            name=data.validated_data.get("name"),
            language=data.validated_data.get("language"),
            marketing_consent=data.validated_data.get("marketing_consent"),
            ip=data.validated_data.get("ip"),
            user_agent=data.validated_data.get("user_agent", ""),
            device_id=data.validated_data.get("device_id", ""),
        )
        participant = _with_codes(Participant.objects.for_merchant(request.merchant)).get(pk=participant.pk)
        body = ParticipantOutput(participant, context={"program_slug": program.slug}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="participants_list",
        summary="List participants",
        parameters=filter_parameters(program_selectors.ParticipantFilter),
        responses={200: page_of(ParticipantOutput), 400: error_response(400, "A filter's value is not valid.")},
        examples=[OpenApiExample("A page", response_only=True, value=page_example(PARTICIPANT_EXAMPLE))],
    )
    def get(self, request):
        queryset = _with_codes(self.scoped(Participant))
        queryset = self.filtered(program_selectors.ParticipantFilter, queryset.exclude(status="erased"))
        return paginate(self, queryset.distinct(), ParticipantOutput)


class ParticipantDetailApi(TenantAPIView):
    @extend_schema(
        operation_id="participants_retrieve",
        summary="A participant by external id (or our id)",
        parameters=[
            OpenApiParameter(
                "by",
                enum=["external_id", "id"],
                required=False,
                description="Look up only by this field (default: external_id, then id).",
            ),
            OpenApiParameter("program", required=False, description="Which program's code to show at the top level."),
        ],
        responses=ParticipantOutput,
        examples=[OpenApiExample("Participant", value=PARTICIPANT_EXAMPLE, response_only=True)],
    )
    def get(self, request, ref: str):
        by = request.query_params.get("by")
        participant = program_selectors.participant_get(
            merchant=request.merchant,
            livemode=request.livemode,
            ref=ref,
            by=by if by in ("id", "external_id") else None,
        )
        participant = _with_codes(Participant.objects.for_merchant(request.merchant)).get(pk=participant.pk)
        context = {"program_slug": request.query_params.get("program")}
        return Response(ParticipantOutput(participant, context=context).data)


# --- codes ------------------------------------------------------------------------------------------------------


# --- shared input -----------------------------------------------------------------------------------------------


def _require_code_or_click(attrs):
    if not (attrs.get("code") or attrs.get("click_id")):
        raise serializers.ValidationError({"code": ["Give a code or a click_id."]})


# --- referrals --------------------------------------------------------------------------------------------------


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


class ReferralListCreateApi(TenantAPIView):
    @extend_schema_serializer(component_name="ReferralCreate")
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=64, required=False, allow_blank=True)
        click_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
        customer = CustomerInput()
        ga_client_id = serializers.RegexField(
            r"^[0-9]{1,20}\.[0-9]{1,20}$",
            max_length=64,
            required=False,
            allow_blank=True,
            help_text="The friend's Google Analytics client id (referral.js `ReferralSaaS.gaClientId()`): sent to a "
            "connected GA4 with the referral_signup event.",
        )

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
            ga_client_id=data.validated_data.get("ga_client_id", ""),
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
        queryset = self.scoped(Referral)
        queryset = queryset.select_related("program", "code", "referrer", "variant")
        return paginate(self, self.filtered(ReferralFilter, queryset), ReferralOutput)


REFUND_EXAMPLE = {
    "id": 3,
    "order_id": "1001",
    "refund_id": "r-1",
    "amount": "29.90",
    "currency": "PLN",
    "order_refunded_amount": "29.90",
    "created_at": "2026-11-24T09:00:00Z",
}


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
        conversion = (
            selectors.conversion_list(merchant=request.merchant, livemode=request.livemode)
            .filter(order_id=order_id)
            .first()
        )
        if conversion is None:
            raise NotFound("No order with this order_id.")
        refunds = (
            Refund.objects.for_merchant(request.merchant).filter(conversion=conversion).select_related("conversion")
        )
        return Response(RefundOutput(refunds, many=True).data)
