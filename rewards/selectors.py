"""Reads for rewards: a participant's rewards, points and milestone progress, the cash due."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db.models import Case, Exists, F, OuterRef, Sum, When
from django.utils import timezone

from programs.models import Participant, Program
from referral_saas.money import currency_decimals, quantize
from rewards.models import (
    COUPON_KINDS,
    MONEY_KINDS,
    CatalogItem,
    Kind,
    LedgerEntry,
    Reward,
    RewardRule,
    Side,
    Unit,
    Work,
)
from tracking.models import Conversion, Referral, ReferralCode

ENDED = (Reward.Status.REJECTED, Reward.Status.VOIDED, Reward.Status.CLAWED_BACK)


# --- a rule's value and the rules that apply (read once per order by the deciding services) ----------------------


def rule_value(rule: RewardRule, *, order_amount: Decimal | None, currency: str) -> Decimal:
    """The reward's value: fixed, or a percentage of the (kept) order capped at max_value; rounded to the
    currency's minor unit (points: whole points, rounded down)."""
    cap = None
    if rule.value_type == RewardRule.ValueType.PERCENT_OF_ORDER and rule.kind != Kind.PERCENT_COUPON:
        value = (order_amount or Decimal(0)) * rule.value / Decimal(100)
        cap = rule.max_value
    else:
        value = rule.value
    if rule.kind == Kind.POINTS:
        value = value.to_integral_value(rounding=ROUND_FLOOR)
        return value if cap is None else min(value, cap.to_integral_value(rounding=ROUND_FLOOR))
    if rule.kind in MONEY_KINDS:
        # Rounded first, then capped by the maximum rounded down: a maximum of 99.50 in yen pays 99, never 100.
        value = quantize(value, currency)
        unit = Decimal(1).scaleb(-currency_decimals(currency))
        return value if cap is None else min(value, cap.quantize(unit, rounding=ROUND_FLOOR))
    if rule.kind == Kind.PERCENT_COUPON:
        return value
    return Decimal(0)


def program_rules(program: Program) -> list[RewardRule]:
    """The program's active rules, loaded once per order."""
    rules = list(
        RewardRule.objects.for_merchant(program.merchant)
        .filter(program=program, active=True)
        .select_related("pool")
        .order_by("pk")
    )
    for rule in rules:
        rule.program = program
    return rules


def rules_for(
    *,
    program: Program,
    variant_id: int | None,
    triggers: tuple[str, ...],
    at: datetime.datetime,
    rules: list[RewardRule] | None = None,
) -> list[RewardRule]:
    """Active rules of the program for these triggers, for everyone or for this A/B variant, valid at `at`.

    A variant's own rules replace the program's for the side and trigger they cover: a friend of variant B, whose
    referrer was offered "$15", pays B's $15 rule instead of the program's $10 one, not both; the A/B test compares
    what each arm offers and pays. A side and trigger the variant has no rule for is paid by the program's."""
    valid = [
        rule
        for rule in (program_rules(program) if rules is None else rules)
        if rule.trigger in triggers
        and (rule.variant_id is None or rule.variant_id == variant_id)
        and (rule.valid_from is None or rule.valid_from <= at)
        and (rule.valid_until is None or at < rule.valid_until)
    ]
    covered = {(rule.side, rule.trigger) for rule in valid if rule.variant_id is not None}
    return [rule for rule in valid if rule.variant_id is not None or (rule.side, rule.trigger) not in covered]


def friend_rules(*, program: Program, variant_id: int | None) -> list[RewardRule]:
    """The rules that pay the friend who uses a code of `variant_id` (sign-up and purchases, valid now): what the
    shop's code check shows, so that a checkout applies the friend's discount as the rules will pay it."""
    triggers = (RewardRule.Trigger.SIGNUP, RewardRule.Trigger.FIRST_PURCHASE, RewardRule.Trigger.EACH_PURCHASE)
    payable = rules_for(program=program, variant_id=variant_id, triggers=triggers, at=timezone.now())
    return [rule for rule in payable if rule.side == Side.REFEREE]


def program_setup_warnings(*, program: Program) -> list[str]:
    """What in a program's reward rules misleads people or pays nobody (the admin's guardrails):

    - an active program without an active rule pays nobody, whatever its offer says;
    - a friend's coupon earned by their first purchase that is held: "15% off your first order" reaches the friend
      after that order (weeks later); a discount on the first order is paid at sign-up;
    - an A/B variant whose offer differs from the program's but has no rule of its own for that side: its people
      read the variant's offer and are paid the program's.
    """
    from django.utils.translation import gettext as _

    rules = program_rules(program)
    warnings = []
    if program.status == Program.Status.ACTIVE and not rules:
        warnings.append(
            _("%(program)s is active but has no active reward rule: nobody will be paid, whatever the offer says. "
              "Add its rules under Rewards > Reward rules.") % {"program": program.name}
        )  # fmt: skip
    for rule in rules:
        if (
            rule.side == Side.REFEREE
            and rule.trigger == RewardRule.Trigger.FIRST_PURCHASE
            and rule.kind in COUPON_KINDS
            and rule.hold_days
        ):
            warnings.append(
                _("Reward rule “%(rule)s” gives the friend a coupon for their first purchase after a %(days)d-day "
                  "hold: it reaches them weeks after that purchase. For a discount on the first order, pay the friend "
                  "at sign-up (when: the friend's sign-up, hold 0).") % {"rule": rule.name, "days": rule.hold_days}
            )  # fmt: skip
    for variant in program.variants.all():
        for side, field in ((Side.REFERRER, "referrer_offer"), (Side.REFEREE, "referee_offer")):
            offer = getattr(variant, field)
            own = any(rule.variant_id == variant.pk and rule.side == side for rule in rules)
            if offer and offer != getattr(program, field) and not own:
                warnings.append(
                    _(
                        "Variant %(variant)s offers “%(offer)s” but has no reward rule of its own for the %(side)s: "
                        "they are paid the program's rules. Add a rule limited to this variant."
                    )
                    % {"variant": variant.name, "offer": offer, "side": Side(side).label.lower()}
                )
    return warnings


def qualifying_minimum(*, program: Program, variant_id: int | None, rules: list[RewardRule] | None = None):
    """The least a friend's order must be worth (kept, in the program's currency) to make a successful referral:
    the lowest minimum order of the referrer's purchase rules when every one of them has one (an order none of them
    would pay is no success, for milestones and for the portal's friend list alike). None when a purchase rule pays
    any amount, or none pays per purchase."""
    purchase = (RewardRule.Trigger.FIRST_PURCHASE, RewardRule.Trigger.EACH_PURCHASE)
    paying = [
        rule
        for rule in rules_for(program=program, variant_id=variant_id, triggers=purchase, at=timezone.now(), rules=rules)
        if rule.side == Side.REFERRER
    ]
    minimums = [rule.min_order_value for rule in paying if rule.min_order_value is not None]
    if not paying or len(minimums) < len(paying):
        return None
    return min(minimums)


def successful_referrals(*, program: Program, referrer: Participant) -> int:
    """Friends who bought, were not rejected, whose order passed fraud scoring, was not refunded in full and kept at
    least the program's qualifying_minimum: what milestones count, and what the portal shows as "bought" (one
    definition of a successful referral). A milestone reward still on hold when the count drops below it waits until
    it is reached again; once issued, it stays (rewards.services.issuing.reward_release)."""
    approved = milestone_orders(Work.objects.for_merchant(program.merchant))
    variant_id = (
        ReferralCode.objects.for_merchant(program.merchant)
        .filter(program=program, participant=referrer)
        .values_list("variant_id", flat=True)
        .first()
    )
    minimum = qualifying_minimum(program=program, variant_id=variant_id)
    if minimum is not None:
        kept = Case(
            When(conversion__program_amount__isnull=True,
                 then=F("conversion__amount") - F("conversion__refunded_amount")),
            default=F("conversion__program_amount") - F("conversion__program_refunded_amount"),
        )  # fmt: skip
        approved = approved.alias(kept=kept).filter(kept__gte=minimum)
    return (
        Referral.objects.for_merchant(program.merchant)
        .filter(program=program, referrer=referrer, status=Referral.Status.CONVERTED)
        .filter(Exists(approved))
        .count()
    )


def milestone_orders(works):
    """Of `works`, the orders of the referral (OuterRef "pk") that make it count towards milestones (shared with the
    sweeper, which looks for milestones reached and not paid)."""
    return works.filter(
        referral_id=OuterRef("pk"),
        conversion__isnull=False,
        conversion__status=Conversion.Status.ATTRIBUTED,  # not an order rejected since (a reviewer's later word)
        conversion__amount__gt=F("conversion__refunded_amount"),
        refund__isnull=True,
        stage="done",
        decision="approve",
    )


def budget_spent(*, program: Program) -> Decimal:
    """Money committed to rewards of the program: everything not rejected, voided or clawed back, less what refunds
    took back from used coupons."""
    total = (
        Reward.objects.for_merchant(program.merchant)
        .filter(program=program, unit=Unit.MONEY, livemode=True, rule__isnull=False)  # not bought with points
        .exclude(status__in=ENDED)
        .aggregate(total=Sum(F("value") - F("taken_back")))["total"]
    )
    return total or Decimal(0)


# --- a participant's rewards, points and milestones ------------------------------------------------------------


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
    upcoming: list[RewardRule]


def reward_in_words(kind: str, value, currency: str, description: str) -> str:
    """A reward (or a rule, or a catalog item) in words in the active language: "a 10% off coupon", "1,500 JPY in
    store credit". Plain text: the page escapes it."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    reward = SimpleNamespace(kind=kind, value=value, currency=currency, description=description)
    return render_to_string("rewards/_what.txt", {"reward": reward}).strip()


def rule_in_words(rule: RewardRule, currency: str) -> str:
    """What a rule gives, in words in the active language (a milestone's reward): "a coupon worth 20.00 PLN"; a free
    product, an experience or a pool coupon by the description the shop wrote. Never the rule's name, which is the
    staff's."""

    value = rule_value(rule, order_amount=None, currency=currency)
    description = rule.description or (rule.pool.description if rule.pool_id else "")
    return reward_in_words(rule.kind, value, currency, description)


def milestone_progress(*, program: Program, participant: Participant) -> MilestoneProgress | None:
    """How many friends bought, and how far the next milestone is. None if the program has no milestones for them.

    Only milestones the rewards engine would pay this participant now are promised: rules for everyone or for their
    A/B variant, inside their valid from/to. A milestone already paid stays in the list of those reached even after
    its offer ended.
    """

    milestones = [
        rule
        for rule in program_rules(program)
        if rule.trigger == RewardRule.Trigger.MILESTONE and rule.side == Side.REFERRER and rule.milestone
    ]
    if not milestones:
        return None
    variant_id = (
        ReferralCode.objects.for_merchant(program.merchant)
        .filter(program=program, participant=participant)
        .values_list("variant_id", flat=True)
        .first()
    )
    payable = rules_for(
        program=program, variant_id=variant_id, triggers=(RewardRule.Trigger.MILESTONE,), at=timezone.now(),
        rules=milestones,
    )  # fmt: skip
    earned = dict(
        Reward.objects.for_merchant(program.merchant)
        .filter(participant=participant, program=program, milestone__isnull=False)
        .exclude(status__in=(Reward.Status.REJECTED, Reward.Status.VOIDED))
        .values_list("rule_id", "status")
    )
    # Handed over: reached for good. One still on hold is reached while the count says so (it waits otherwise).
    paid = {rule_id for rule_id, status in earned.items() if status in (Reward.Status.ISSUED, Reward.Status.REDEEMED)}
    rules = sorted((r for r in milestones if r in payable or r.pk in earned), key=lambda r: (r.milestone, r.pk))
    if not rules:
        return None
    done = successful_referrals(program=program, referrer=participant)
    reached = [r for r in rules if r.milestone <= done or r.pk in paid]
    upcoming = [r for r in rules if r.milestone > done and r.pk not in paid and (r in payable or r.pk in earned)]
    nxt = upcoming[0] if upcoming else None
    percent = 100 if nxt is None else int(100 * done / nxt.milestone)
    return MilestoneProgress(done, nxt, (nxt.milestone - done) if nxt else 0, percent, reached, upcoming)


def points_history(*, participant: Participant, program: Program | None = None, limit: int = 50):
    scope = LedgerEntry.objects.for_merchant(participant.merchant).filter(
        participant=participant, account=LedgerEntry.Account.POINTS
    )
    if program is not None:
        scope = scope.filter(program=program)
    return scope.select_related("reward")[:limit]


def catalog_for(*, program: Program):
    return CatalogItem.objects.for_merchant(program.merchant).filter(program=program, active=True)


def _cash_owed(merchant):
    """The ledger entries of what a merchant owes in cash: the cash account, live mode only (test-mode cash is never
    paid). A person's due in a currency is the sum of theirs in it, whichever program earned it."""
    return LedgerEntry.objects.for_merchant(merchant).filter(account=LedgerEntry.Account.CASH, livemode=True)


def cash_due_to(*, participant: Participant, currency: str) -> Decimal:
    """What the merchant owes one person in one currency (cash earned, less paid out and clawed back): the amount
    the payout page offers and cash_payout_record allows at most."""
    total = (
        _cash_owed(participant.merchant)
        .filter(participant=participant, currency=currency)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal(0)


def cash_due(*, merchant, program: Program | None = None):
    """Per participant and currency: what the merchant owes (as cash_due_to), those owed something. With a program:
    the people who earned cash in it, with all they are due in its currency (a payout settles a person's cash in a
    currency, whichever program earned it)."""
    scope = _cash_owed(merchant)
    if program is not None:
        earners = scope.filter(program=program).values("participant_id")
        scope = scope.filter(participant_id__in=earners, currency=program.currency)
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


def ledger_balance(*, participant: Participant, account: str = LedgerEntry.Account.POINTS, program=None) -> Decimal:
    """A balance is the sum of the append-only ledger."""
    scope = LedgerEntry.objects.for_merchant(participant.merchant).filter(participant=participant, account=account)
    if program is not None:
        scope = scope.filter(program=program)
    return scope.aggregate(total=Sum("amount"))["total"] or Decimal(0)
