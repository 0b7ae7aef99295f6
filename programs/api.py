"""Shop API: programs (read). Participants, who answer with their codes and links, are tracking's API."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from programs import selectors
from programs.serializers import ProgramOutput
from referral_saas.api import TenantAPIView

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
