"""Deciding rewards: after a friend's order (or sign-up) is scored for fraud, which rules pay whom, how much.

Exactly once: the conversion row is locked, a `Work` row (unique per conversion / sign-up) says whether it was
done, and each reward is unique per (rule, conversion, side), (rule, referral, side) or (rule, participant,
milestone). A task delivered twice, concurrently or after a crash decides once.
"""

from __future__ import annotations

import datetime
import logging
import zoneinfo
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from fraud.models import FraudAssessment
from fraud.services import NotScorable, conversion_assess, referral_assess
from programs.models import Participant, Program
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import ApplicationError
from rewards.models import Notification, Reward, RewardRule, Side, Unit, Work
from rewards.selectors import (
    budget_spent,
    program_rules,
    rule_value,
    rules_for,
    successful_referrals,
)
from rewards.services.events import conversion_events_emit, event_emit, flagged_data, referral_data
from rewards.services.notify import notification_owe
from rewards.services.transitions import reward_record_created, reward_transition
from tracking.models import Conversion, Referral
from tracking.services import participant_upsert

logger = logging.getLogger(__name__)
Trigger = RewardRule.Trigger
ACTOR = "system:rewards"


# --- values -------------------------------------------------------------------------------------------------------


# --- the pipeline -------------------------------------------------------------------------------------------------


def _work_open(*, merchant, referral: Referral, conversion: Conversion | None) -> tuple[Work, bool]:
    """The Work row of this conversion (or sign-up), locked; created if missing. Returns (work, created)."""
    scope = Work.objects.for_merchant(merchant).filter(referral=referral, conversion=conversion, refund__isnull=True)
    found = scope.select_for_update().first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return Work.objects.for_merchant(merchant).create(
                referral=referral, conversion=conversion, stage=Work.Stage.REVIEW
            ), True
    except IntegrityError:  # another worker created it: wait for its transaction, then see what it decided
        return scope.select_for_update().get(), False


def conversion_process(*, merchant, conversion_id: int) -> str:
    """Score an attributed order for fraud and act on the decision, once per decision. Returns what happened.

    approve -> rewards are created (pending through their hold); review -> nothing until a person decides (the
    fraud review sends this task again); reject -> no rewards, and the referral's rewards not yet issued are
    rejected. A person who later overturns the decision gets it acted on again: an approval creates the rewards
    (the unique constraints keep that idempotent), a rejection ends them.
    """

    scope = Conversion.objects.for_merchant(merchant)
    with transaction.atomic():
        # Lock order everywhere: referral, then its orders, then rewards (the fraud review locks the same way).
        found = scope.filter(pk=conversion_id).values_list("referral_id", flat=True).first()
        if found is None:
            return "skipped"
        Referral.objects.for_merchant(merchant).select_for_update(no_key=True).filter(pk=found).first()
        conversion = (
            scope.select_for_update(of=("self",), no_key=True)
            .select_related(
                "program",
                "referral__referrer",
                "referral__referee",
                "referral__program",
                "referral__code",
                "referral__variant",
            )
            .filter(pk=conversion_id)
            .first()
        )
        if conversion is None or conversion.referral is None:
            return "skipped"
        if conversion.status != Conversion.Status.ATTRIBUTED and not (
            conversion.status == Conversion.Status.REJECTED and conversion.rejection_reason == Referral.Reason.FRAUD
        ):
            return "skipped"  # refused at attribution (self-referral, existing customer...): nothing to pay
        referral = conversion.referral
        _attach(
            merchant, conversion, conversion.program, referral, referral.program, referral.referrer, referral.referee
        )
        work, created = _work_open(merchant=merchant, referral=referral, conversion=conversion)
        assessment = conversion_assess(conversion=conversion)
        if work.stage == Work.Stage.DONE and work.decision == assessment.decision:
            return "done_before"
        decided_before = work.decision
        referral.refresh_from_db(fields=["status", "rejection_reason"])
        conversion.refresh_from_db(fields=["status", "rejection_reason", "refunded_amount", "program_refunded_amount"])
        made: list[Reward] = []
        if assessment.decision == "review":
            result = "review"
        elif assessment.decision == "reject" or referral.status == Referral.Status.REJECTED:
            _end_open_rewards(referral=referral, conversion=conversion, reason="Rejected as fraud.")
            result = "rejected"
        else:
            rules = program_rules(conversion.program)
            if any(rule.trigger == Trigger.MILESTONE for rule in rules):
                _lock_referrer(referral.referrer)
            made = _decide_purchase_rewards(conversion=conversion, referral=referral, rules=rules)
            work.stage, work.decision = Work.Stage.DONE, assessment.decision  # this friend counts for milestones
            work.save(update_fields=["stage", "decision"])
            made += _decide_milestones(
                program=conversion.program, referrer=referral.referrer, variant_id=referral.variant_id, rules=rules
            )
            result = "approved"
        if created:
            conversion_events_emit(conversion, assessment, rewards=made)
        elif result == "approved" and decided_before == "reject":
            # A person reinstated an order rejected as fraud: only now is it attributed, and the shop hears so.
            conversion_events_emit(conversion, assessment, rewards=made, reinstated=True)
        if result != "review":
            work.stage, work.decision, work.updated_at = Work.Stage.DONE, assessment.decision, timezone.now()
            work.save(update_fields=["stage", "decision", "updated_at"])
    return result


def _attach(merchant, *rows) -> None:
    """Rows loaded for `merchant` know it without another query each."""
    for row in rows:
        if row is not None:
            row.merchant = merchant


def referral_process(*, merchant, referral_id: int) -> str:
    """A friend signed up: score the sign-up and act on the decision (the friend's welcome offer), once per
    decision; a decision a person overturns later is acted on again."""
    with transaction.atomic():
        referral = (
            Referral.objects.for_merchant(merchant)
            .select_for_update(of=("self",), no_key=True)
            .select_related("program", "referrer", "referee", "code", "variant")  # + what referral.created shows
            .filter(pk=referral_id)
            .first()
        )
        if referral is None:
            return "skipped"
        _attach(merchant, referral, referral.program, referral.referrer, referral.referee)
        work, created = _work_open(merchant=merchant, referral=referral, conversion=None)
        assessment = _signup_assessment(merchant=merchant, referral=referral)
        if assessment is None:  # rejected before it was ever scored (e.g. by an order's fraud review)
            if referral.status == Referral.Status.REJECTED:
                _end_open_rewards(referral=referral, conversion=None, reason="Rejected as fraud.")
            return "skipped"
        if work.stage == Work.Stage.DONE and work.decision == assessment.decision:
            return "done_before"
        referral.refresh_from_db(fields=["status", "rejection_reason"])  # as scoring left it (rejected, maybe)
        if created:
            event_emit(merchant, referral.livemode, "referral.created", lambda: referral_data(referral))
            if assessment.decision != "approve":
                event_emit(
                    merchant, referral.livemode, "fraud.flagged", lambda: flagged_data(assessment, referral, None)
                )
        if assessment.decision == "review":
            return "review"
        if assessment.decision == "approve" and referral.status != Referral.Status.REJECTED:
            rules = rules_for(
                program=referral.program, variant_id=referral.variant_id, triggers=(Trigger.SIGNUP,), at=timezone.now()
            )
            for rule in rules:
                participant = _participant_for(rule.side, referral)
                if participant is not None:
                    _create_reward(rule=rule, participant=participant, referral=referral, conversion=None)
            result = "approved"
        else:
            _end_open_rewards(referral=referral, conversion=None, reason="Rejected as fraud.")
            result = "rejected"
        work.stage, work.decision, work.updated_at = Work.Stage.DONE, assessment.decision, timezone.now()
        work.save(update_fields=["stage", "decision", "updated_at"])
    return result


def _signup_assessment(*, merchant, referral: Referral):
    """The sign-up's fraud assessment: scored now if it never was (a referral rejected unscored has none)."""

    stored = FraudAssessment.objects.for_merchant(merchant).filter(referral=referral, conversion__isnull=True).first()
    if stored is not None:
        return stored
    try:
        return referral_assess(referral=referral)
    except NotScorable:
        return None


# --- deciding -----------------------------------------------------------------------------------------------------


def _purchase_number(conversion: Conversion) -> int:
    """Which purchase of the friend this is, by when it happened (occurred_at, then id), whatever order the orders
    are decided in: 1 + the friend's attributed orders that happened before it. An earlier order not decided yet
    (a backlog, a fraud review) keeps its place, so a later order decided first never takes the first purchase;
    one rejected (as fraud, or refused at attribution) does not count. Only orders the shop has reported can count:
    the first purchase is the earliest one known when deciding, and an earlier order reported after a later one
    was paid as the first purchase gets no second first-purchase reward (see _purchase_slot). The caller holds the
    referral row, which recording an order of the friend locks too, so the orders known do not change meanwhile."""
    happened_before = Q(occurred_at__lt=conversion.occurred_at) | Q(
        occurred_at=conversion.occurred_at, pk__lt=conversion.pk
    )
    earlier = Conversion.objects.for_merchant(conversion.merchant).filter(
        happened_before, referral_id=conversion.referral_id, status=Conversion.Status.ATTRIBUTED
    )
    return earlier.count() + 1


def _purchase_slot(*, rule: RewardRule, referral: Referral, conversion: Conversion, number: int) -> int:
    """Where an "each purchase" reward is recorded (unique per rule, friend, side and place): its number, unless a
    later order took that place while this one was not reported yet; then the next free place, so that the friend's
    first N purchases known are still paid, each once, and never more than N."""
    taken = set(
        Reward.objects.for_merchant(referral.merchant)
        .filter(rule=rule, referral=referral, side=rule.side, purchase__gte=number)
        .exclude(conversion=conversion)
        .values_list("purchase", flat=True)
    )
    while number in taken:
        number += 1
    return number


def _decide_purchase_rewards(*, conversion: Conversion, referral: Referral, rules: list[RewardRule]) -> list[Reward]:
    rules = rules_for(
        program=conversion.program,
        variant_id=referral.variant_id,
        triggers=(Trigger.FIRST_PURCHASE, Trigger.EACH_PURCHASE),
        at=conversion.occurred_at,
        rules=rules,
    )
    kept = conversion.kept_program_amount  # in the program's currency (converted at the order's rate)
    if not rules or kept <= 0:
        return []  # a fully refunded order pays nothing, whatever the rule
    number = _purchase_number(conversion)
    made = []
    for rule in rules:
        if rule.trigger == Trigger.FIRST_PURCHASE and number != 1:
            continue
        if rule.trigger == Trigger.EACH_PURCHASE and rule.max_purchases and number > rule.max_purchases:
            continue
        if rule.min_order_value is not None and kept < rule.min_order_value:
            continue
        place = 1
        if rule.trigger == Trigger.EACH_PURCHASE:
            place = _purchase_slot(rule=rule, referral=referral, conversion=conversion, number=number)
            if rule.max_purchases and place > rule.max_purchases:
                continue
        try:
            participant = _participant_for(rule.side, referral)
        except ApplicationError as exc:  # the friend cannot join (program ended, erased...): the other side still pays
            logger.warning("no %s reward for referral %s: %s", rule.side, referral.pk, exc.message)
            continue
        if participant is None:
            continue
        reward = _create_reward(
            rule=rule,
            participant=participant,
            referral=referral,
            conversion=conversion,
            order_amount=kept,
            purchase=place,
        )
        if reward is not None:
            made.append(reward)
    pending = [r for r in made if r.side == Side.REFERRER and r.status == Reward.Status.PENDING]
    if pending:
        notification_owe(
            Notification.Kind.FRIEND_PURCHASED,
            key=f"conversion:{conversion.pk}",
            participant=referral.referrer,
            reward=pending[0],
        )
    return made


def _decide_milestones(
    *, program: Program, referrer: Participant, variant_id: int | None, rules: list[RewardRule]
) -> list[Reward]:
    rules = rules_for(
        program=program, variant_id=variant_id, triggers=(Trigger.MILESTONE,), at=timezone.now(), rules=rules
    )
    rules = [r for r in rules if r.side == Side.REFERRER]
    if not rules:
        return []
    successful = successful_referrals(program=program, referrer=referrer)
    made = []
    for rule in rules:
        if rule.milestone and successful >= rule.milestone:
            reward = _create_reward(
                rule=rule, participant=referrer, referral=None, conversion=None, milestone=rule.milestone
            )
            if reward is not None:
                made.append(reward)
    return made


def _lock_referrer(referrer: Participant) -> None:
    """Milestones count the referrer's friends whose decision is committed: two friends decided at once would each
    count without the other (READ COMMITTED: the other's decision is not committed yet) and neither would reach the
    milestone. So one referrer's friends are decided one after the other: the second waits here until the first
    commits, and its count then sees it. Taken before the caps' (participant) and the budget's (program) locks,
    in the order they take them, so no deadlock is added (points and payouts lock only the participant)."""
    Participant.objects.for_merchant(referrer.merchant).select_for_update(no_key=True).filter(pk=referrer.pk).first()


def milestones_check(*, merchant, program_id: int, referrer_id: int) -> int:
    """Pay the milestones a referrer has reached and not been paid (the sweeper sends this when it finds one: a
    milestone lost before one referrer's friends were decided one at a time). Returns how many rewards were made;
    each milestone is paid once (unique per rule, participant and milestone). A rule for an A/B variant pays a
    referrer who has a friend of that variant, instead of the program's milestone rules, as when it is decided
    with a friend's order."""
    with transaction.atomic():
        referrer = Participant.objects.for_merchant(merchant).filter(pk=referrer_id).first()
        program = Program.objects.for_merchant(merchant).filter(pk=program_id).first()
        if referrer is None or program is None:
            return 0
        _attach(merchant, referrer, program)
        _lock_referrer(referrer)
        rules = program_rules(program)
        # The rules as a friend's order of each of the referrer's variants would find them (rules_for: a
        # variant's own milestone rules replace the program's); without a converted friend, the program's.
        variants = set(
            Referral.objects.for_merchant(merchant)
            .filter(program=program, referrer=referrer, status=Referral.Status.CONVERTED)
            .values_list("variant_id", flat=True)
        ) or {None}
        made = []
        for variant_id in sorted(variants, key=lambda pk: -1 if pk is None else pk):
            made += _decide_milestones(program=program, referrer=referrer, variant_id=variant_id, rules=rules)
    return len(made)


def _participant_for(side: str, referral: Referral) -> Participant | None:
    """Who gets a side's reward. The friend becomes a participant (with their own code) if they were not one."""
    if side == Side.REFERRER:
        return referral.referrer
    if referral.referee_id:
        return referral.referee
    if not (referral.referee_external_id or referral.referee_email):
        return None  # erased
    participant, _code, _created = participant_upsert(
        merchant=referral.merchant,
        livemode=referral.livemode,
        program=referral.program,
        external_id=referral.referee_external_id,
        email=referral.referee_email,
    )
    Referral.objects.for_merchant(referral.merchant).filter(pk=referral.pk, referee__isnull=True).update(
        referee=participant
    )
    referral.referee = participant
    return participant


def _create_reward(
    *,
    rule: RewardRule,
    participant: Participant,
    referral: Referral | None,
    conversion: Conversion | None,
    order_amount: Decimal | None = None,
    milestone: int | None = None,
    purchase: int | None = None,
) -> Reward | None:
    """Insert the reward (pending through the hold, or rejected by a cap or the budget). None if it exists."""
    program = rule.program
    merchant = program.merchant
    now = timezone.now()
    value = rule_value(rule, order_amount=order_amount, currency=program.currency)
    if rule.unit in (Unit.MONEY, Unit.POINTS, Unit.PERCENT) and value <= 0:
        return None  # nothing to give (e.g. 10% of a fully refunded order)
    status, reason, code = Reward.Status.PENDING, "", ""
    refusal, code = _cap_refusal(rule=rule, participant=participant, now=now), Reward.ReasonCode.CAP
    if not refusal and participant.livemode:  # test-mode rewards never spend the real budget
        refusal = _budget_refusal(program=program, value=value if rule.unit == Unit.MONEY else Decimal(0))
        code = Reward.ReasonCode.BUDGET
    if refusal:
        status, reason = Reward.Status.REJECTED, refusal
    else:
        code = ""
    reward = Reward(
        merchant=merchant,
        livemode=participant.livemode,
        program=program,
        rule=rule,
        side=rule.side,
        participant=participant,
        referral=referral,
        conversion=conversion,
        milestone=milestone,
        purchase=purchase,
        kind=rule.kind,
        unit=rule.unit,
        percent_of_order=rule.value if rule.value_type == RewardRule.ValueType.PERCENT_OF_ORDER else None,
        max_value=rule.max_value,
        min_order_value=rule.min_order_value,
        value=value,
        original_value=value,
        currency=program.currency,
        description=rule.description or (rule.pool.description if rule.pool_id else ""),
        status=status,
        reason=reason,
        reason_code=code,
        hold_until=now + datetime.timedelta(days=rule.hold_days),
        ended_at=now if status == Reward.Status.REJECTED else None,
    )
    try:
        with transaction.atomic():
            reward.save(force_insert=True)
    except IntegrityError:
        return None  # decided before (the unique constraints): once per rule and conversion / referral / milestone
    reward_record_created(reward=reward, actor=ACTOR)
    if status == Reward.Status.PENDING and rule.hold_days == 0:
        enqueue_on_commit("rewards.release", merchant_id=merchant.pk, reward_ids=[reward.pk])
    return reward


def _cap_refusal(*, rule: RewardRule, participant: Participant, now: datetime.datetime) -> str:
    """Per-person caps (per month, in the merchant's time zone, and in total). The participant row is locked so
    two orders of the same referrer processed at once cannot both take the last place. A coupon clawed back was
    used before its order was refunded: it still counts (else refund-and-reorder beats the cap). Rejected and
    voided rewards, and points, credit or cash taken back from the balance, left the referrer nothing: they do not."""
    if rule.cap_per_month is None and rule.cap_total is None:
        return ""
    Participant.objects.for_merchant(rule.merchant).select_for_update(no_key=True).filter(pk=participant.pk).first()
    counted = (
        Reward.objects.for_merchant(rule.merchant)
        .filter(rule=rule, participant=participant)
        .exclude(status__in=(Reward.Status.REJECTED, Reward.Status.VOIDED))
        .exclude(status=Reward.Status.CLAWED_BACK, redeemed_at__isnull=True)
    )
    if rule.cap_total is not None and counted.count() >= rule.cap_total:
        return f"Limit of {rule.cap_total} rewards per person reached."
    if rule.cap_per_month is not None:
        tz = zoneinfo.ZoneInfo(rule.program.merchant.timezone)
        local = now.astimezone(tz)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if counted.filter(created_at__gte=month_start).count() >= rule.cap_per_month:
            return f"Limit of {rule.cap_per_month} rewards per person per month reached."
    return ""


def _budget_refusal(*, program: Program, value: Decimal) -> str:
    """Rewards stop when the program's budget is spent; the owner is emailed once. The program row is locked
    so concurrent rewards cannot overspend it."""
    if program.budget is None:
        return ""
    Program.objects.for_merchant(program.merchant).select_for_update(no_key=True).filter(pk=program.pk).first()
    spent = budget_spent(program=program)
    if spent + value <= program.budget:
        return ""
    notification_owe(Notification.Kind.BUDGET_SPENT, key=f"program:{program.pk}", program=program)
    return "The program's budget is spent."


def _end_open_rewards(*, referral: Referral, conversion: Conversion | None, reason: str) -> None:
    """A referral (or one of its orders) rejected as fraud pays nothing: the rewards not yet issued are rejected.
    Issued ones were handed over already; the merchant sees them in the admin and can refund the order."""

    scope = Reward.objects.for_merchant(referral.merchant).filter(
        status__in=(Reward.Status.PENDING, Reward.Status.APPROVED)
    )
    scope = (
        scope.filter(referral=referral)
        if referral.status == Referral.Status.REJECTED
        else scope.filter(conversion=conversion)
    )
    for reward in scope.select_for_update().order_by("pk"):
        reward_transition(
            reward=reward,
            to=Reward.Status.REJECTED,
            actor="system:fraud",
            reason=reason,
            reason_code=Reward.ReasonCode.FRAUD,
        )


# --- notifications and events -------------------------------------------------------------------------------------
