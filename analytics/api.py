"""Shop API: GET /api/v1/stats, the daily rollups of one program."""

from __future__ import annotations

import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.selectors.periods import DEFAULT_DAYS, Period, merchant_today
from analytics.selectors.stats_api import program_stats
from analytics.serializers import STATS_EXAMPLE, StatsOutput
from programs.models import Program
from referral_saas.api import TenantAPIView
from referral_saas.errors import NotFound, ValidationFailed
from referral_saas.schema import error_response

MAX_RANGE_DAYS = 366
EARLIEST, LATEST = datetime.date(2000, 1, 1), datetime.date(2100, 12, 31)


class StatsApi(TenantAPIView):
    class InputSerializer(serializers.Serializer):
        program = serializers.SlugField(max_length=60)

        def get_fields(self):
            fields = super().get_fields()
            fields["from"] = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
            fields["to"] = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
            return fields

        def validate(self, attrs):
            for name in ("from", "to"):
                if name in attrs and not (EARLIEST <= attrs[name] <= LATEST):
                    raise serializers.ValidationError({name: [f"Must be between {EARLIEST} and {LATEST}."]})
            return attrs

    @extend_schema(
        operation_id="stats_retrieve",
        summary="A program's numbers, day by day",
        description=(
            "Totals and one entry per day (days without activity are zeros) from the rollups, which are at most "
            "a minute or two behind. Days are calendar days in your shop's time zone; money is in the program's "
            "currency, revenue net of refunds. `from` and `to` are inclusive (default: the last 30 days) and at most "
            f"{MAX_RANGE_DAYS} days apart. A test-mode key reads test-mode data."
        ),
        parameters=[
            OpenApiParameter("program", OpenApiTypes.STR, required=True, description="The program's slug."),
            OpenApiParameter("from", OpenApiTypes.DATE, required=False, description="First day, YYYY-MM-DD."),
            OpenApiParameter("to", OpenApiTypes.DATE, required=False, description="Last day, YYYY-MM-DD."),
        ],
        responses={
            200: StatsOutput,
            400: error_response(
                400, "`program` missing, a date not YYYY-MM-DD, `from` after `to`, or a range too long."
            ),
            404: error_response(404, "No program with this slug."),
        },
        examples=[OpenApiExample("Two days", response_only=True, value=STATS_EXAMPLE)],
    )
    def get(self, request):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        merchant = request.merchant
        end = values.get("to") or merchant_today(merchant)
        start = values.get("from") or end - datetime.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ValidationFailed(fields={"from": ["Must be on or before `to`."]})
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise ValidationFailed(
                f"Ask for at most {MAX_RANGE_DAYS} days at a time.",
                code="range_too_long",
                fields={"to": [f"At most {MAX_RANGE_DAYS} days after `from`."]},
            )
        program = Program.objects.for_merchant(merchant).filter(slug=values["program"]).first()
        if program is None:
            raise NotFound("No program with this slug.")
        stats = program_stats(merchant=merchant, livemode=request.livemode, program=program, period=Period(start, end))
        return Response(StatsOutput(stats).data)
