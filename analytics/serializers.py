"""How the daily statistics look in the shop API (GET /api/v1/stats)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers


def _money():
    # As many decimals as the currency has (the selector rounds to them): "129.90" PLN, "1500" JPY.
    return serializers.DecimalField(
        max_digits=16,
        decimal_places=None,
        help_text='Amount as a string with the currency\'s decimals, e.g. "129.90" (PLN) or "1500" (JPY).',
    )


@extend_schema_serializer(component_name="StatsDay")
class StatsDayOutput(serializers.Serializer):
    date = serializers.DateField()
    clicks = serializers.IntegerField(help_text="Referral link clicks, bots excluded.")
    unique_visitors = serializers.IntegerField()
    participants_joined = serializers.IntegerField()
    shares = serializers.IntegerField()
    signups = serializers.IntegerField(help_text="Referred friends who signed up (or bought first), not rejected.")
    conversions = serializers.IntegerField(help_text="Attributed orders.")
    new_customers = serializers.IntegerField(help_text="Attributed first purchases.")
    revenue = _money()
    rewards_cost = _money()


@extend_schema_serializer(component_name="StatsTotals")
class StatsTotalsOutput(serializers.Serializer):
    clicks = serializers.IntegerField()
    unique_visitors = serializers.IntegerField(help_text="Sum of the daily unique visitors.")
    participants_joined = serializers.IntegerField()
    shares = serializers.IntegerField()
    invites_sent = serializers.IntegerField()
    signups = serializers.IntegerField()
    conversions = serializers.IntegerField()
    new_customers = serializers.IntegerField()
    revenue = _money()
    refunds = _money()
    rewards_cost = _money()
    conversion_rate = serializers.FloatField(allow_null=True, help_text="conversions / clicks; null without clicks.")


@extend_schema_serializer(component_name="Stats")
class StatsOutput(serializers.Serializer):
    program = serializers.CharField()
    currency = serializers.CharField()
    totals = StatsTotalsOutput()
    days = StatsDayOutput(many=True)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here, not as class attributes.
        fields["from"] = serializers.DateField()
        fields["to"] = serializers.DateField()
        return fields


STATS_EXAMPLE = {
    "program": "friends",
    "currency": "PLN",
    "from": "2026-11-01",
    "to": "2026-11-02",
    "totals": {
        "clicks": 1520,
        "unique_visitors": 1311,
        "participants_joined": 48,
        "shares": 95,
        "invites_sent": 30,
        "signups": 61,
        "conversions": 23,
        "new_customers": 19,
        "revenue": "2987.70",
        "refunds": "129.90",
        "rewards_cost": "380.00",
        "conversion_rate": 0.0151,
    },
    "days": [
        {"date": "2026-11-01", "clicks": 800, "unique_visitors": 690, "participants_joined": 20, "shares": 51,
         "signups": 30, "conversions": 12, "new_customers": 10, "revenue": "1558.80", "rewards_cost": "200.00"},
        {"date": "2026-11-02", "clicks": 720, "unique_visitors": 621, "participants_joined": 28, "shares": 44,
         "signups": 31, "conversions": 11, "new_customers": 9, "revenue": "1428.90", "rewards_cost": "180.00"},
    ],
}  # fmt: skip
