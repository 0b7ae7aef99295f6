"""Shop API for rewards: list them, mark a coupon used, read and spend points."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from programs.selectors import participant_get
from referral_saas.api import TenantAPIView, filter_parameters, is_id, page_example, page_of, paginate
from referral_saas.errors import NotFound
from referral_saas.schema import error_response
from rewards import selectors, services
from rewards.models import Kind, LedgerEntry, Reward
from rewards.serializers import POINTS_EXAMPLE, REWARD_EXAMPLE, PointsOutput, RewardOutput


class RewardFilter(django_filters.FilterSet):
    participant = django_filters.CharFilter(
        method="filter_participant", help_text="The participant's external id or our id."
    )
    status = django_filters.ChoiceFilter(choices=Reward.Status.choices)
    side = django_filters.ChoiceFilter(choices=[("referrer", "referrer"), ("referee", "referee")])
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    program = django_filters.CharFilter(field_name="program__slug")
    coupon_code = django_filters.CharFilter(help_text="Look up the reward behind a coupon code at checkout.")
    order_id = django_filters.CharFilter(field_name="conversion__order_id")

    class Meta:
        model = Reward
        fields = ["participant", "status", "side", "kind", "program", "coupon_code", "order_id"]

    def filter_participant(self, queryset, name, value):
        match = Q(participant__external_id=value)
        if is_id(value):
            match |= Q(participant_id=int(value))
        return queryset.filter(match)


def _rewards(view: TenantAPIView):
    return view.scoped(Reward).select_related("program", "participant", "conversion")


class RewardListApi(TenantAPIView):
    @extend_schema(
        operation_id="rewards_list",
        summary="List rewards",
        description="Every reward with its status: pending (inside the hold), approved, issued (coupon code or "
        "ledger entry written), redeemed; or rejected, voided, clawed_back with a reason.",
        parameters=filter_parameters(RewardFilter),
        responses={200: page_of(RewardOutput), 400: error_response(400, "A filter's value is not valid.")},
        examples=[OpenApiExample("A page", response_only=True, value=page_example(REWARD_EXAMPLE))],
    )
    def get(self, request):
        return paginate(self, self.filtered(RewardFilter, _rewards(self)), RewardOutput)


class RewardDetailApi(TenantAPIView):
    @extend_schema(
        operation_id="rewards_retrieve",
        summary="A reward",
        responses=RewardOutput,
        examples=[OpenApiExample("Reward", response_only=True, value=REWARD_EXAMPLE)],
    )
    def get(self, request, reward_id: str):
        return Response(RewardOutput(_reward_or_404(self, reward_id)).data)


def _reward_or_404(view: TenantAPIView, reward_id: str) -> Reward:
    reward = _rewards(view).filter(pk=int(reward_id)).first() if is_id(reward_id) else None
    if reward is None:
        raise NotFound("No reward with this id.")
    return reward


class RewardRedeemApi(TenantAPIView):
    @extend_schema(
        operation_id="rewards_redeem",
        summary="Mark a coupon as used",
        description="The shop accepted the coupon at checkout: issued -> redeemed. A second call is 409 "
        "(send an Idempotency-Key to make retries safe); an expired coupon is 422.",
        request=None,
        responses={200: RewardOutput},
        examples=[OpenApiExample("Redeemed", response_only=True, value={**REWARD_EXAMPLE, "status": "redeemed"})],
    )
    def post(self, request, reward_id: str):
        reward = services.reward_redeem(reward=_reward_or_404(self, reward_id), actor=f"api:{request.auth.name}")
        return Response(RewardOutput(reward).data)


def _participant(request, ref: str):
    return participant_get(merchant=request.merchant, livemode=request.livemode, ref=ref)


class PointsApi(TenantAPIView):
    @extend_schema(
        operation_id="participants_points",
        summary="A participant's points",
        description="The balance (the sum of the append-only ledger) and the latest 100 entries. The participant "
        "is named by the shop's external id, or our id.",
        responses=PointsOutput,
        examples=[OpenApiExample("Points", response_only=True, value=POINTS_EXAMPLE)],
    )
    def get(self, request, ref: str):
        participant = _participant(request, ref)
        entries = (
            LedgerEntry.objects.for_merchant(request.merchant)
            .filter(participant=participant, account=LedgerEntry.Account.POINTS)
            .select_related("program")[:100]
        )
        data = {
            "participant": participant.pk,
            "balance": int(selectors.ledger_balance(participant=participant)),
            "entries": entries,
        }
        return Response(PointsOutput(data).data)


class PointsRedeemApi(TenantAPIView):
    @extend_schema_serializer(component_name="PointsRedeem")
    class InputSerializer(serializers.Serializer):
        item = serializers.CharField(max_length=20, help_text="The catalog item's id.")

    @extend_schema(
        operation_id="participants_points_redeem",
        summary="Spend points on a catalog item",
        description="Issues the item's reward (e.g. a coupon) at once and takes the points. 422 when the balance "
        "is short; concurrent redemptions never overdraw. Send an Idempotency-Key to make retries safe.",
        request=InputSerializer,
        responses={201: RewardOutput},
        examples=[
            OpenApiExample("Redeem", request_only=True, value={"item": "12"}),
            OpenApiExample(
                "Issued",
                response_only=True,
                value={**REWARD_EXAMPLE, "side": "referrer", "order_id": None, "referral_id": None},
            ),
        ],
    )
    def post(self, request, ref: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        participant = _participant(request, ref)
        reward = services.points_redeem(
            participant=participant, item_id=data.validated_data["item"], actor=f"api:{request.auth.name}"
        )
        return Response(RewardOutput(reward).data, status=status.HTTP_201_CREATED)
