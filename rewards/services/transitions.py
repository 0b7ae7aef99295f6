"""The one place a reward changes status. Illegal moves are refused; every move is recorded with its actor."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from referral_saas.errors import Conflict, NotFound, ValidationFailed
from referral_saas.webhooks.services import webhook_emit
from rewards.models import LedgerEntry, Reward, RewardEvent
from rewards.serializers import reward_data

S = Reward.Status

# Pending waits out the hold; approved is cleared for issuing; issued has its coupon / ledger entry; redeemed was
# used at the shop. Rejected (fraud, caps, budget), voided (refund before use) and clawed back (refund after use)
# are ends. Issued -> voided is for a coupon not used yet; one whose points, credit or cash are in the customer's
# balance (a ledger entry) is not voided, as that would leave them there: a refund claws it back (see _in_balance).
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


def reward_transition(
    *, reward: Reward, to: str, actor: str, reason: str = "", reason_code: str = "", **changes
) -> Reward:
    """Move `reward` (a row the caller holds locked) to status `to`, or raise Conflict for an illegal move.

    Records the event, stamps the time, saves `changes` with it (and `reason_code`, why it ended, for pages to say
    in their reader's language), and tells the shop by webhook.
    """
    if to not in ALLOWED[reward.status]:
        raise Conflict(
            f"A reward that is {reward.status} cannot become {to}.",
            code="illegal_reward_transition",
        )
    if to == S.VOIDED and reward.status == S.ISSUED and _in_balance(reward):
        raise Conflict(
            _("It is already in the customer's balance; refund the order to take it back."), code="reward_in_balance"
        )
    now = timezone.now()
    before = reward.status
    reward.status = to
    if reason:
        reward.reason = reason[:300]
    if reason_code:
        reward.reason_code = reason_code
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


def _in_balance(reward: Reward) -> bool:
    return LedgerEntry.objects.for_merchant(reward.merchant).filter(reward=reward).exists()


def reward_void(*, reward: Reward, actor: str, reason: str) -> Reward:
    """Staff void a reward (with a reason, kept in its audit trail): it is not paid, and an issued coupon can no
    longer be redeemed. Pending, approved or issued only; an issued reward whose points, credit or cash are already
    in the customer's balance cannot be voided (a refund of the order claws them back)."""
    return _end_by_staff(reward=reward, to=S.VOIDED, actor=actor, reason=reason)


def reward_reject(*, reward: Reward, actor: str, reason: str) -> Reward:
    """Staff reject a reward (fraud, terms not met; with a reason, kept in its audit trail): it is never released.
    Pending or approved only: one handed over already is voided or refunded instead."""
    return _end_by_staff(reward=reward, to=S.REJECTED, actor=actor, reason=reason)


def _end_by_staff(*, reward: Reward, to: str, actor: str, reason: str) -> Reward:
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [_("Give a reason: it is kept in the reward's audit trail.")]})
    with transaction.atomic():
        locked = (
            Reward.objects.for_merchant(reward.merchant)
            .select_for_update(of=("self",))
            .select_related("merchant", "participant", "program")
            .filter(pk=reward.pk)
            .first()
        )
        if locked is None:
            raise NotFound(_("This reward no longer exists."))
        return reward_transition(reward=locked, to=to, actor=actor, reason=reason, reason_code=Reward.ReasonCode.STAFF)


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

    webhook_emit(
        merchant=reward.merchant, livemode=reward.livemode, event_type=event_type, data=lambda: reward_data(reward)
    )
