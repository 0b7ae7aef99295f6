"""Shop API: programs (read) and participants (upsert and read)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from programs import selectors, services
from programs.fields import CustomerEmailField
from programs.models import Participant
from referral_saas.api import TenantAPIView, filter_parameters, page_example, page_of, paginate
from referral_saas.fields import KeyField
from referral_saas.schema import error_response
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from referral_saas.validators import validate_single_line
from tracking.models import ReferralCode
from tracking.selectors import link_for

LANGUAGES = [code for code, _name in LANGUAGE_CHOICES]


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
        from django.conf import settings

        return f"{settings.SITE_URL}/p/{program.merchant.slug}/{program.slug}/"


PROGRAM_EXAMPLE = {
    "slug": "friends",
    "name": "Bring a friend",
    "status": "active",
    "live": True,
    "starts_on": "2026-11-01",
    "ends_on": None,
    "currency": "PLN",
    "default_language": "pl",
    "landing_url": "https://sklep.example/welcome",
    "attribution_window_days": 30,
    "attribution_model": "first_touch",
    "new_customers_only": True,
    "referrer_offer": "10% of your friend's first order",
    "referee_offer": "10% off your first order",
    "terms": "…",
    "good_fit": "Friends who love coffee",
    "variants": [{"name": "A", "weight": 1}, {"name": "B", "weight": 1}],
    "portal_url": "https://referrals.example/p/sklep/friends/",
}


class ProgramListApi(TenantAPIView):
    @extend_schema(
        operation_id="programs_list",
        summary="List programs",
        responses=ProgramOutput(many=True),
        examples=[OpenApiExample("Programs", value=[PROGRAM_EXAMPLE], response_only=True)],
    )
    def get(self, request):
        programs = selectors.program_list(merchant=request.merchant).order_by("-created_at")
        return Response(ProgramOutput(programs, many=True).data)


class ProgramDetailApi(TenantAPIView):
    @extend_schema(
        operation_id="programs_retrieve",
        summary="A program by slug",
        responses=ProgramOutput,
        examples=[OpenApiExample("Program", value=PROGRAM_EXAMPLE, response_only=True)],
    )
    def get(self, request, slug: str):
        return Response(ProgramOutput(selectors.program_get(merchant=request.merchant, slug=slug)).data)


class CodeOutput(serializers.Serializer):
    program = serializers.CharField(source="program.slug")
    code = serializers.CharField()
    link = serializers.SerializerMethodField()
    status = serializers.CharField()
    variant = serializers.CharField(source="variant.name", allow_null=True, default=None)

    def get_link(self, code) -> str:
        return link_for(code.code)


class ParticipantOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.SerializerMethodField()
    external_id = serializers.CharField(allow_null=True)
    email = serializers.EmailField(allow_null=True)
    name = serializers.CharField()
    language = serializers.CharField()
    status = serializers.CharField()
    marketing_consent = serializers.BooleanField()
    code = serializers.SerializerMethodField()
    link = serializers.SerializerMethodField()
    codes = serializers.SerializerMethodField()
    referred_by = serializers.IntegerField(source="referred_by_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def _main_code(self, participant) -> ReferralCode | None:
        wanted = self.context.get("program_slug")
        codes = self._codes(participant)
        for code in codes:
            if wanted is None or code.program.slug == wanted:
                return code
        return None

    def _codes(self, participant) -> list[ReferralCode]:
        return sorted(participant.codes.all(), key=lambda c: c.created_at)

    def get_program(self, participant) -> str | None:
        code = self._main_code(participant)
        return code.program.slug if code else None

    def get_code(self, participant) -> str | None:
        code = self._main_code(participant)
        return code.code if code else None

    def get_link(self, participant) -> str | None:
        code = self._main_code(participant)
        return link_for(code.code) if code else None

    @extend_schema_field(CodeOutput(many=True))
    def get_codes(self, participant) -> list[dict]:
        return CodeOutput(self._codes(participant), many=True).data


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
        program = selectors.program_get_by_slug(merchant=request.merchant, slug=data.validated_data["program"])
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
        parameters=filter_parameters(selectors.ParticipantFilter),
        responses={200: page_of(ParticipantOutput), 400: error_response(400, "A filter's value is not valid.")},
        examples=[OpenApiExample("A page", response_only=True, value=page_example(PARTICIPANT_EXAMPLE))],
    )
    def get(self, request):
        queryset = _with_codes(Participant.objects.for_merchant(request.merchant).filter(livemode=request.livemode))
        queryset = selectors.ParticipantFilter(request.query_params, queryset=queryset.exclude(status="erased"))
        if not queryset.is_valid():
            from rest_framework.exceptions import ValidationError

            raise ValidationError(queryset.errors)
        return paginate(self, queryset.qs.distinct(), ParticipantOutput)


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
        participant = selectors.participant_get(
            merchant=request.merchant,
            livemode=request.livemode,
            ref=ref,
            by=by if by in ("id", "external_id") else None,
        )
        participant = _with_codes(Participant.objects.for_merchant(request.merchant)).get(pk=participant.pk)
        context = {"program_slug": request.query_params.get("program")}
        return Response(ParticipantOutput(participant, context=context).data)
