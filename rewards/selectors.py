"""Reads for rewards: a participant's rewards, points and milestone progress, the cash due."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from programs.models import Participant, Program
from rewards.models import CatalogItem, LedgerEntry, Reward, RewardRule


def rewards_of(*, participant: Participant, program: Program | None = None):
    scope = Reward.objects.for_merchant(participant.merchant).filter(participant=participant)
    if program is not None:
        scope = scope.filter(program=program)
    return scope.select_related("program", "conversion").order_by("-created_at")


@dataclass
class MilestoneProgress:
    successful: int
    next_rule: RewardRule | None
    remaining: int
    percent: int
    reached: list[RewardRule]


def milestone_progress(*, program: Program, participant: Participant) -> MilestoneProgress | None:
    """How many friends bought, and how far the next milestone is. None if the program has no milestones."""
    from rewards.services.deciding import successful_referrals

    rules = list(
        RewardRule.objects.for_merchant(program.merchant)
        .filter(program=program, active=True, trigger=RewardRule.Trigger.MILESTONE, side="referrer")
        .order_by("milestone")
    )
    if not rules:
        return None
    done = successful_referrals(program=program, referrer=participant)
    reached = [r for r in rules if r.milestone <= done]
    upcoming = [r for r in rules if r.milestone > done]
    nxt = upcoming[0] if upcoming else None
    percent = 100 if nxt is None else int(100 * done / nxt.milestone)
    return MilestoneProgress(done, nxt, (nxt.milestone - done) if nxt else 0, percent, reached)


def points_history(*, participant: Participant, program: Program | None = None, limit: int = 50):
    scope = LedgerEntry.objects.for_merchant(participant.merchant).filter(
        participant=participant, account=LedgerEntry.Account.POINTS
    )
    if program is not None:
        scope = scope.filter(program=program)
    return scope.select_related("reward")[:limit]


def catalog_for(*, program: Program):
    return CatalogItem.objects.for_merchant(program.merchant).filter(program=program, active=True)


def cash_due(*, merchant, program: Program | None = None):
    """Per participant and currency: cash earned minus paid out and clawed back (what the merchant owes)."""
    scope = LedgerEntry.objects.for_merchant(merchant).filter(account=LedgerEntry.Account.CASH, livemode=True)
    if program is not None:
        scope = scope.filter(program=program)
    return (
        scope.values(
            "participant_id", "participant__email", "participant__name", "participant__external_id", "currency"
        )
        .annotate(due=Sum("amount"))
        .filter(due__gt=Decimal(0))
        .order_by("-due")
    )


def rewards_for_conversions(*, merchant, conversion_ids) -> dict[int, list[Reward]]:
    """The rewards of many orders in one query (none for an empty list)."""
    ids = list(conversion_ids)
    if not ids:
        return {}
    found: dict[int, list[Reward]] = {}
    rows = (
        Reward.objects.for_merchant(merchant)
        .filter(conversion_id__in=ids)
        .select_related("program", "participant", "conversion")
        .order_by("pk")
    )
    for reward in rows:
        found.setdefault(reward.conversion_id, []).append(reward)
    return found
