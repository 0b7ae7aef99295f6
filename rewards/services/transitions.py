"""The one place a reward changes status. Illegal moves are refused; every move is recorded with its actor."""

from __future__ import annotations

from django.utils import timezone

from referral_saas.errors import Conflict
from rewards.models import Reward, RewardEvent
from rewards.serializers import reward_data

S = Reward.Status

# Pending waits out the hold; approved is cleared for issuing; issued has its coupon / ledger entry; redeemed was
# used at the shop. Rejected (fraud, caps, budget), voided (refund before use) and clawed back (refund after use)
# are ends.
ALLOWED: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.VOIDED}),
    S.APPROVED: frozenset({S.ISSUED, S.REJECTED, S.VOIDED}),
    S.ISSUED: frozenset({S.REDEEMED, S.VOIDED, S.CLAWED_BACK}),
    S.REDEEMED: frozenset({S.CLAWED_BACK}),
    S.REJECTED: frozenset(),
    S.VOIDED: frozenset(),
    S.CLAWED_BACK: frozenset(),
}
WEBHOOK_EVENTS = {
    S.APPROVED: "reward.approved",
    S.ISSUED: "reward.issued",
    S.VOIDED: "reward.voided",
    S.CLAWED_BACK: "reward.clawed_back",
}
TIMESTAMPS = {
    S.APPROVED: "approved_at",
    S.ISSUED: "issued_at",
    S.REDEEMED: "redeemed_at",
    S.REJECTED: "ended_at",
    S.VOIDED: "ended_at",
    S.CLAWED_BACK: "ended_at",
}


def reward_transition(*, reward: Reward, to: str, actor: str, reason: str = "", **changes) -> Reward:
    """Move `reward` (a row the caller holds locked) to status `to`, or raise Conflict for an illegal move.

    Records the event, stamps the time, saves `changes` with it, and tells the shop by webhook.
    """
    if to not in ALLOWED[reward.status]:
        raise Conflict(
            f"A reward that is {reward.status} cannot become {to}.",
            code="illegal_reward_transition",
        )
    now = timezone.now()
    before = reward.status
    reward.status = to
    if reason:
        reward.reason = reason[:300]
    setattr(reward, TIMESTAMPS[to], now)
    for name, value in changes.items():
        setattr(reward, name, value)
    reward.save()
    RewardEvent.objects.for_merchant(reward.merchant).create(
        reward=reward, from_status=before, to_status=to, actor=actor[:120], reason=reason[:300], at=now
    )
    if to in WEBHOOK_EVENTS:
        emit_reward_event(reward, WEBHOOK_EVENTS[to])
    return reward


def reward_record_created(*, reward: Reward, actor: str) -> None:
    """The first line of a new reward's audit trail."""
    RewardEvent.objects.for_merchant(reward.merchant).create(
        reward=reward,
        from_status="",
        to_status=reward.status,
        actor=actor[:120],
        reason=reward.reason,
        at=reward.created_at,
    )


def reward_note_value_change(*, reward: Reward, actor: str, old, new, reason: str) -> None:
    reward_note(reward=reward, actor=actor, reason=f"{reason} ({old} → {new})")


def reward_note(*, reward: Reward, actor: str, reason: str) -> None:
    """An audit trail line for a change that is not a status move (a value pro-rated, a release put off)."""
    RewardEvent.objects.for_merchant(reward.merchant).create(
        reward=reward, from_status=reward.status, to_status=reward.status, actor=actor[:120], reason=reason[:300]
    )


def emit_reward_event(reward: Reward, event_type: str) -> None:
    from referral_saas.webhooks.services import webhook_emit

    webhook_emit(
        merchant=reward.merchant, livemode=reward.livemode, event_type=event_type, data=lambda: reward_data(reward)
    )
