"""How a reward looks outside: the API's representation, also the `data` of reward.* webhooks. And an order as
the conversions API shows it (with its fraud score and rewards), also the `data` of conversion.attributed."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from fraud import selectors as fraud_selectors
from fraud.serializers import FraudSummaryOutput
from referral_saas.fields import MoneyOutputField, money_text
from referral_saas.money import quantize
from referral_saas.serializers import FastSerializer
from rewards.selectors import rewards_for_conversions
from tracking.models import Referral


def _money_currency(reward) -> str | None:
    return reward.currency if reward.unit == "money" else None


@extend_schema_serializer(component_name="Reward")
class RewardOutput(FastSerializer):
    @extend_schema_serializer(component_name="RewardParticipant")
    class ParticipantSummary(FastSerializer):
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


_DATETIME = serializers.DateTimeField()


def _text(value) -> str | None:
    return None if value is None else str(value)


def _when(value) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _referral_summary(referral) -> dict:
    referrer = referral.referrer
    return {
        "id": int(referral.pk),
        "status": _text(referral.status),
        "referrer": None if referrer is None else {"id": int(referrer.pk), "external_id": _text(referrer.external_id)},
        "code": _text(referral.code.code),
    }


class ConversionOutput(FastSerializer):
    @extend_schema_serializer(component_name="ConversionReferral")
    class ReferralSummary(FastSerializer):
        @extend_schema_serializer(component_name="ConversionReferrer")
        class Referrer(FastSerializer):
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

    def to_representation(self, conversion) -> dict:
        """The fields above, written out: what DRF's field-by-field walk answers (the fields stay the schema and
        the reference: tests/rewards/test_conversion_output.py compares the two on orders of every kind), in a
        tenth of its time, for the checkout's answer and every page of orders."""
        program_amount = conversion.program_amount
        program = conversion.program
        referral = conversion.referral
        rejection_reason = conversion.rejection_reason
        return {
            "id": int(conversion.pk),
            "order_id": str(conversion.order_id),
            "amount": money_text(conversion.amount, conversion.currency),
            "currency": _text(conversion.currency),
            "refunded_amount": money_text(conversion.refunded_amount, conversion.currency),
            "program_amount": money_text(program_amount, conversion.program_currency or None),
            "program_currency": self.get_program_currency(conversion),
            "program_refunded_amount": self.get_program_refunded_amount(conversion),
            "exchange_rate": self.get_exchange_rate(conversion),
            "status": _text(conversion.status),
            "attributed": bool(conversion.attributed),
            "rejection_reason": _text(rejection_reason),
            "attribution_reason": rejection_reason,
            "program": None if program is None else _text(program.slug),
            "referral": None if referral is None else _referral_summary(referral),
            "is_new_customer": bool(conversion.is_new_customer),
            "customer": self.get_customer(conversion),
            "fraud": self.get_fraud(conversion),
            "rewards": self.get_rewards(conversion),
            "occurred_at": _when(conversion.occurred_at),
            "created_at": _when(conversion.created_at),
        }

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


@extend_schema_serializer(component_name="PointsEntry")
class PointsEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    points = serializers.IntegerField(source="amount")
    program = serializers.CharField(source="program.slug")
    reward_id = serializers.IntegerField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Points")
class PointsOutput(serializers.Serializer):
    participant = serializers.IntegerField()
    balance = serializers.IntegerField()
    entries = PointsEntryOutput(many=True)


POINTS_EXAMPLE = {
    "participant": 42,
    "balance": 150,
    "entries": [
        {
            "id": 9,
            "kind": "spent",
            "points": -100,
            "program": "friends",
            "reward_id": 77,
            "note": "10 PLN voucher",
            "created_at": "2026-11-20T09:00:00Z",
        },
        {
            "id": 3,
            "kind": "earned",
            "points": 250,
            "program": "friends",
            "reward_id": 51,
            "note": "250 points per friend",
            "created_at": "2026-11-02T12:00:00Z",
        },
    ],
}
