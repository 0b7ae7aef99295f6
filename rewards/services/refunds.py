"""Refunds take back what they paid for.

Each reward of the refunded order is brought in line with what the customer kept:
- a full refund (or a partial one that leaves less than the rule's minimum order) ends it: pending / approved /
  issued-but-unused -> voided; used coupons, paid cash and spent points -> clawed back, with a negative ledger
  entry or an amount due, the original record untouched;
- a partial refund pro-rates rewards worth a percentage of the order; fixed rewards are kept.
The target is recomputed from the order's kept amount under a lock on the order, so a refund applied twice, or two
refunds racing, never take back more than once; each (reward, refund) effect is recorded once (a constraint).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from rewards.models import Kind, LedgerEntry, Reward, RewardAdjustment, RewardRule, Unit, Work
from rewards.selectors import rule_value
from rewards.services.issuing import LEDGER_ACCOUNT
from rewards.services.transitions import reward_note_value_change, reward_transition
from tracking.models import Conversion, Refund

S = Reward.Status
ACTOR = "system:refund"


def refund_apply(*, merchant, refund_id: int) -> int:
    """Apply one refund to the rewards of its order, once. Returns how many rewards it changed."""
    with transaction.atomic():
        refund = Refund.objects.for_merchant(merchant).select_related("conversion").filter(pk=refund_id).first()
        if refund is None:
            return 0
        conversion = (
            Conversion.objects.for_merchant(merchant)
            .select_for_update(of=("self",), no_key=True)
            .select_related("program")
            .get(pk=refund.conversion_id)
        )
        try:
            with transaction.atomic():
                Work.objects.for_merchant(merchant).create(
                    referral_id=conversion.referral_id, conversion=conversion, refund=refund, stage=Work.Stage.DONE
                )
        except IntegrityError:
            return 0  # applied before
        kept = conversion.kept_program_amount  # in the program's currency, at the order's own rate
        changed = 0
        rewards = (
            Reward.objects.for_merchant(merchant)
            .select_for_update(of=("self",))
            .select_related("rule", "program", "participant", "merchant")
            .filter(conversion=conversion)
            .exclude(status__in=(S.REJECTED, S.VOIDED, S.CLAWED_BACK))
            .order_by("pk")
        )
        for reward in rewards:
            changed += _reconcile(reward=reward, refund=refund, kept=kept)
    return changed


def _target(reward: Reward, kept: Decimal) -> Decimal | None:
    """What the reward should be worth now, by the terms it was made with; None = keep it as it is."""
    if kept <= 0 or (reward.min_order_value is not None and kept < reward.min_order_value):
        return Decimal(0)
    if reward.percent_of_order is not None and reward.unit in (Unit.MONEY, Unit.POINTS):
        terms = RewardRule(
            kind=reward.kind,
            value_type=RewardRule.ValueType.PERCENT_OF_ORDER,
            value=reward.percent_of_order,
            max_value=reward.max_value,
        )
        return min(rule_value(terms, order_amount=kept, currency=reward.currency), reward.original_value)
    return None  # fixed rewards are kept


def _reconcile(*, reward: Reward, refund: Refund, kept: Decimal) -> int:
    target = _target(reward, kept)
    if target is None:
        return 0
    # What the customer holds now: a used coupon keeps its value as used, less what earlier refunds took back.
    current = reward.value - reward.taken_back
    if target > 0 and target >= current:
        return 0
    if target == 0 and current == 0 and reward.unit != Unit.ITEM:
        return 0
    used = reward.status == S.REDEEMED or (reward.status == S.ISSUED and reward.kind in LEDGER_ACCOUNT)
    clawback = Decimal(0)
    if used:
        # Handed over and used: the customer owes the difference (in money or points; a used percent coupon or
        # item has no amount to record). Ledger kinds take it back now with a negative entry (a balance may go
        # below zero: that is what is owed).
        clawback = current - target if reward.unit in (Unit.MONEY, Unit.POINTS) else Decimal(0)
        if reward.kind in LEDGER_ACCOUNT and clawback:
            _ledger_clawback(reward=reward, refund=refund, amount=clawback)
        elif reward.status == S.REDEEMED and clawback and target > 0:
            # A used coupon keeps its value as used; the part taken back leaves the cost and frees the budget
            # (a full clawback ends the reward, which does both).
            reward.taken_back += clawback
            reward.save(update_fields=["taken_back"])
    if target == 0:
        to, action = (S.CLAWED_BACK, "clawed_back") if used else (S.VOIDED, "voided")
        reward_transition(
            reward=reward,
            to=to,
            actor=ACTOR,
            reason=f"Order refunded ({refund.refund_id}).",
            reason_code=Reward.ReasonCode.REFUND,
        )
    else:
        action = "pro_rated"
        if reward.status != S.REDEEMED:
            # Not used yet, the reward itself shrinks (the shop reads a coupon's value when it is redeemed); or a
            # ledger reward whose difference the ledger just took back. A used coupon keeps its record.
            reward.value = target
            reward.save(update_fields=["value"])
        reward_note_value_change(
            reward=reward, actor=ACTOR, old=current, new=target, reason=f"Partial refund {refund.refund_id}"
        )
    RewardAdjustment.objects.for_merchant(reward.merchant).create(
        reward=reward, refund=refund, old_value=current, new_value=target, clawback=clawback, action=action
    )
    return 1


def _ledger_clawback(*, reward: Reward, refund: Refund, amount: Decimal) -> None:
    LedgerEntry.objects.for_merchant(reward.merchant).create(
        livemode=reward.livemode,
        program=reward.program,
        participant=reward.participant,
        account=LEDGER_ACCOUNT[reward.kind],
        kind=LedgerEntry.Kind.CLAWBACK,
        amount=-amount,
        currency="" if reward.kind == Kind.POINTS else reward.currency,
        reward=reward,
        refund=refund,
        note=f"Refund {refund.refund_id}",
        created_at=timezone.now(),
    )
