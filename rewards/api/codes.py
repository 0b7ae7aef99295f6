"""The shop's code check at checkout: is the typed code a referral code, and what does the friend get (the offer's
text and the reward rules that pay it, so that a checkout can apply the friend's discount)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from referral_saas.api import TenantAPIView
from referral_saas.errors import NotFound
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from rewards import selectors
from rewards.models import MONEY_KINDS, Kind, RewardRule
from rewards.offers import offers_for
from tracking.selectors import code_check

LANGUAGES = [code for code, _name in LANGUAGE_CHOICES]


def _currency(rule: RewardRule, currency: str) -> str | None:
    return currency if rule.kind in MONEY_KINDS and rule.value_type == RewardRule.ValueType.FIXED else None


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

        @extend_schema_serializer(component_name="CodeFriendReward")
        class FriendReward(serializers.Serializer):
            when = serializers.ChoiceField(choices=RewardRule.Trigger.choices, help_text="What earns it.")
            kind = serializers.ChoiceField(choices=Kind.choices)
            value_type = serializers.ChoiceField(choices=RewardRule.ValueType.choices)
            value = serializers.DecimalField(
                max_digits=18,
                decimal_places=2,
                coerce_to_string=True,
                help_text="An amount (in `currency`), a percent off, points, or a percentage of the order.",
            )
            currency = serializers.CharField(allow_null=True, help_text="For an amount; null for percents and points.")
            max_value = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
            min_order_value = serializers.DecimalField(
                max_digits=18,
                decimal_places=2,
                allow_null=True,
                help_text="The order must be at least this much (in the program's currency) to earn it.",
            )
            hold_days = serializers.IntegerField(help_text="0: issued at once; else after this many days.")
            description = serializers.CharField(allow_blank=True)

        referee_offer = serializers.CharField(
            help_text="What the friend gets, in words: the merchant's own wording in `language` where they wrote one "
            "(the referrer's A/B variant's, else the program's), else generated from the rules in `referee_rewards`."
        )
        referee_rewards = FriendReward(
            many=True,
            help_text="What the friend gets, as the reward rules that pay it (the A/B variant's where it has its own): "
            "a checkout applies a `percent_coupon` / `amount_coupon` whose `when` is `first_purchase` and whose "
            "`hold_days` is 0 to the friend's first order at once.",
        )

    @extend_schema(
        operation_id="codes_check",
        summary="Check a code typed at checkout",
        parameters=[
            OpenApiParameter(
                "language",
                enum=LANGUAGES,
                required=False,
                description="The offer in this language (en, pl, ro, ru): the merchant's wording in it, else generated "
                "from the rules; absent or a language we do not have: the program's default language. Never an "
                "error: a checkout must not fail on it.",
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
                    "referee_rewards": [
                        {
                            "when": "first_purchase",
                            "kind": "percent_coupon",
                            "value_type": "fixed",
                            "value": "10",
                            "currency": None,
                            "max_value": None,
                            "min_order_value": "50.00",
                            "hold_days": 0,
                            "description": "",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request, code: str):
        language = request.query_params.get("language")
        check = code_check(merchant=request.merchant, livemode=request.livemode, code=code)
        if check is None:
            raise NotFound("Unknown referral code.")
        offers = offers_for(
            program=check.program, variant=check.code.variant, language=language if language in LANGUAGES else None
        )
        return Response(
            self.OutputSerializer(
                {
                    "code": check.code.code,
                    "valid": check.valid,
                    "reason": check.reason,
                    "program": check.program.slug,
                    "referrer": {"id": check.referrer.pk, "name": check.referrer.first_name_initial},
                    "referee_offer": offers["referee_offer"],
                    "referee_rewards": [
                        {
                            "when": rule.trigger,
                            "kind": rule.kind,
                            "value_type": rule.value_type,
                            "value": rule.value,
                            "currency": _currency(rule, check.program.currency),
                            "max_value": rule.max_value,
                            "min_order_value": rule.min_order_value,
                            "hold_days": rule.hold_days,
                            "description": rule.description,
                        }
                        for rule in selectors.friend_rules(program=check.program, variant_id=check.code.variant_id)
                    ],
                }
            ).data
        )
