"""How a reward looks outside: the API's representation, also the `data` of reward.* webhooks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from referral_saas.fields import MoneyOutputField


def _money_currency(reward) -> str | None:
    return reward.currency if reward.unit == "money" else None


@extend_schema_serializer(component_name="Reward")
class RewardOutput(serializers.Serializer):
    @extend_schema_serializer(component_name="RewardParticipant")
    class ParticipantSummary(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField(allow_null=True)
        email = serializers.EmailField(allow_null=True)

    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug")
    side = serializers.CharField()
    status = serializers.CharField()
    kind = serializers.CharField()
    unit = serializers.CharField(help_text="money, percent, points or item")
    value = MoneyOutputField(currency_of=_money_currency, help_text="In the currency's decimals when unit is money.")
    original_value = MoneyOutputField(currency_of=_money_currency)
    taken_back = MoneyOutputField(
        currency_of=_money_currency,
        help_text="What refunds took back after the coupon was used (the customer owes it); value stays as used.",
    )
    currency = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    coupon_code = serializers.CharField(allow_blank=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    hold_until = serializers.DateTimeField()
    reason = serializers.CharField(allow_blank=True)
    participant = ParticipantSummary()
    order_id = serializers.CharField(source="conversion.order_id", allow_null=True, default=None)
    referral_id = serializers.IntegerField(allow_null=True)
    milestone = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    issued_at = serializers.DateTimeField(allow_null=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)


REWARD_EXAMPLE = {
    "id": 501,
    "program": "friends",
    "side": "referrer",
    "status": "issued",
    "kind": "amount_coupon",
    "unit": "money",
    "value": "12.99",
    "original_value": "12.99",
    "taken_back": "0.00",
    "currency": "PLN",
    "description": "",
    "coupon_code": "REF-7K3QX9TB",
    "expires_at": "2027-02-21T10:30:00Z",
    "hold_until": "2026-11-23T10:30:00Z",
    "reason": "",
    "participant": {"id": 42, "external_id": "c-42", "email": "anna@example.com"},
    "order_id": "1001",
    "referral_id": 7,
    "milestone": None,
    "created_at": "2026-11-23T10:30:01Z",
    "issued_at": "2026-11-23T10:30:02Z",
    "redeemed_at": None,
}


def reward_data(reward) -> dict:
    return dict(RewardOutput(reward).data)
