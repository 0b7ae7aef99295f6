"""Deciding orders in batches: one task scores and decides many attributed orders of a merchant in one transaction.

The database is the queue: an order without a Work row is undecided. An attributed order sends its
`rewards.process_conversion` message unless one for the merchant is waiting (coalesced: see
referral_saas.celery.enqueue_coalesced_on_commit); the worker that takes one claims that order and up to
REWARDS_BATCH_SIZE - 1 other undecided orders of the merchant received around it, and a full batch sends a
follow-up at once. A lost message, a killed worker and the sweeper work as before.

Exactly once, as in the per-order path (rewards.services.deciding), and for the same reasons:
- claiming locks the orders' referrals (SKIP LOCKED: a referral another worker holds is left to it) and then the
  orders; a Work row, unique per order, is written for each in the batch's single transaction, and the unique
  constraints of assessments, rewards, participants, codes and emails are the last word: a batch that meets one
  goes on one order at a time (`conversion_process`, each in a savepoint), so one conflict never loses the rest;
- a worker killed mid-batch rolls the whole batch back; its message (acks_late) is delivered again and claims the
  same orders, and the messages of the other orders still bring each of them;
- a message whose own order another worker holds waits for that worker's commit after its own batch and then
  decides the order if it is still undecided (conversion_process), so no message is acknowledged before its order
  is decided.

Orders the batch decides together ("the fast path"): approved by fraud scoring, still attributed, of a program whose
active rules are first-purchase rules without caps and with no budget. Orders sent to a fraud review the first time
are also written together (their Work rows and the shop's events: nothing is paid until a person decides), after
the fast path's. Everything else (a reject, an order whose friend's referral is rejected, milestones, caps, budgets,
each-purchase rules, an order decided before and re-decided after a fraud review) is decided one order at a time
inside the same transaction, after those rows are written, so its counts (milestones, caps, budgets, purchase
places) see them: the same answers as orders decided one after another.

synchronous_commit stays on: a batch commits once for up to REWARDS_BATCH_SIZE orders, so its WAL flush is a small
share of the batch's time, and switching it off would let emails, webhooks and zero-hold coupons leave for rows a
database crash could still lose (the sweeper would decide those orders again, and the shop and the customer would
hear of them twice).
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from fraud.models import Decision
from fraud.selectors import assessment_summary
from fraud.services import conversions_assess
from referral_saas.bulk import insert_rows
from referral_saas.celery import enqueue_now, enqueue_on_commit
from referral_saas.errors import ApplicationError
from referral_saas.webhooks.services import webhook_emit_many
from rewards.models import Notification, Reward, RewardEvent, RewardRule, Side, Unit, Work
from rewards.selectors import program_rules, rule_value, rules_for
from rewards.serializers import ConversionOutput
from rewards.services.deciding import ACTOR, conversion_process
from rewards.services.events import flagged_data, referral_data
from rewards.services.notify import notification_owe
from tracking.models import Conversion, Referral
from tracking.services import referees_join

logger = logging.getLogger(__name__)
Trigger = RewardRule.Trigger

# A message claims the undecided orders received from CLAIM_BEFORE before its own order to CLAIM_WINDOW after it:
# the orders whose messages were coalesced into it were received then (their requests' transactions take less than
# CLAIM_BEFORE; they were committed before the coalesced message's task started, at most COALESCE_SECONDS after
# it was sent). An order outside (a request that took minutes) is found by the sweeper.
CLAIM_BEFORE = datetime.timedelta(minutes=2)
CLAIM_WINDOW = datetime.timedelta(minutes=10)

# Undecided attributed orders of the merchant, oldest first; each order's referral is locked (SKIP LOCKED: one that
# another transaction holds is left out). The partial index conversion_pending serves the scan. Whether an order is
# decided is looked up order by order (a LATERAL subquery with LIMIT 1 is never turned into a join): as a NOT EXISTS
# anti-join, the plan made from the statistics of a flash sale's first minutes (the orders' times past the
# histogram's end: "1 row"; a Work table analyzed when it was empty) read every Work row of the merchant once per
# order: 10 s for a batch of 500 among 9,562 orders in `bench sustained`, 30 ms this way.
_CLAIM = """
    SELECT c.id FROM tracking_conversion c
    JOIN tracking_referral r ON r.id = c.referral_id AND r.merchant_id = c.merchant_id
    LEFT JOIN LATERAL (
        SELECT w.id FROM rewards_work w
        WHERE w.merchant_id = c.merchant_id AND w.conversion_id = c.id AND w.refund_id IS NULL
        LIMIT 1
    ) AS decided ON true
    WHERE c.merchant_id = %(merchant)s
      AND (c.status = 'attributed' OR c.rejection_reason = 'fraud')
      AND {where}
      AND decided.id IS NULL
    ORDER BY c.created_at, c.id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF r SKIP LOCKED
"""

# Which purchase of the friend each order is (deciding._purchase_number, for many orders in one query).
_PURCHASE_NUMBERS = """
    SELECT c.id, 1 + (
        SELECT count(*) FROM tracking_conversion e
        WHERE e.merchant_id = c.merchant_id AND e.referral_id = c.referral_id AND e.status = 'attributed'
          AND (e.occurred_at < c.occurred_at OR (e.occurred_at = c.occurred_at AND e.id < c.id))
    )
    FROM tracking_conversion c WHERE c.merchant_id = %s AND c.id = ANY(%s)
"""


# The message's order: when it was received, whether it has a pipeline row, and whether that row is done with the
# decision its assessment has now (then there is nothing to do: the per-order path would say "done_before").
_ANCHOR = """
    SELECT c.created_at, w.id IS NOT NULL, w.stage = 'done' AND w.decision = a.decision
    FROM tracking_conversion c
    LEFT JOIN rewards_work w ON w.merchant_id = c.merchant_id AND w.conversion_id = c.id AND w.refund_id IS NULL
    LEFT JOIN fraud_fraudassessment a ON a.merchant_id = c.merchant_id AND a.conversion_id = c.id
    WHERE c.merchant_id = %s AND c.id = %s
"""


def conversions_process(*, merchant, conversion_id: int, limit: int | None = None, follow: bool = False) -> str:
    """Decide this attributed order and, in the same transaction, up to `limit` - 1 other undecided orders of the
    merchant received around it (REWARDS_BATCH_SIZE by default). Returns what happened to this order ("approved",
    "review", "rejected", "done_before", "skipped"), with how many other orders the batch decided ("approved+57").

    Every message looks for undecided orders, even when its own is decided: the messages of orders received while
    it waited were coalesced into it (referral_saas.celery.enqueue_coalesced_on_commit). A batch that fills up
    sends a message for the orders after it at once (`follow`: it claims from that order on, waits for nobody), so
    that a backlog keeps every worker process busy.
    """
    limit = limit or settings.REWARDS_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute(_ANCHOR, [merchant.pk, conversion_id])
        anchor = cursor.fetchone()
    if anchor is None:
        return "skipped"
    created_at, decided, done_before = anchor
    own = "done_before" if done_before else None  # what happened to this order, when settled on its own
    if decided and not done_before and not follow:
        # In review, or a decision a person changed since: acted on for this order alone.
        own = conversion_process(merchant=merchant, conversion_id=conversion_id)
    if limit <= 1:
        return own or conversion_process(merchant=merchant, conversion_id=conversion_id)
    with transaction.atomic():
        claimed, full = _claim(merchant=merchant, conversion_id=conversion_id, created_at=created_at, limit=limit)
        if full:  # more are waiting, probably: another worker starts on them now
            enqueue_now("rewards.process_conversion", merchant_id=merchant.pk, conversion_id=claimed[-1], follow=True)
        outcomes = _decide(merchant=merchant, conversion_ids=claimed) if claimed else {}
    others = len(outcomes) - (conversion_id in outcomes)
    if conversion_id in outcomes:
        own = outcomes[conversion_id]
    elif own is None and follow:
        own = "skipped"  # the batch that sent this message has it
    elif own is None:
        # Another worker holds this order (or the batch could not decide it): wait for it, then decide it if it is
        # still undecided, so this message is acknowledged only when its order is.
        own = conversion_process(merchant=merchant, conversion_id=conversion_id)
    return f"{own}+{others}" if others else own


def _claim(*, merchant, conversion_id: int, created_at: datetime.datetime, limit: int) -> tuple[list[int], bool]:
    """Lock this order and up to limit - 1 undecided orders received around it (their referrals first, then the
    orders, the lock order of every path). Returns the ids of those still undecided once locked, and whether the
    limit was reached."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM.format(where="c.id = %(anchor)s"), {"merchant": merchant.pk, "anchor": conversion_id, "limit": 1}
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            _CLAIM.format(where="c.created_at >= %(since)s AND c.created_at < %(until)s AND c.id <> %(anchor)s"),
            {
                "merchant": merchant.pk,
                "anchor": conversion_id,
                "since": created_at - CLAIM_BEFORE,
                "until": created_at + CLAIM_WINDOW,
                "limit": limit - len(ids),
            },
        )
        ids += [row[0] for row in cursor.fetchall() if row[0] not in ids]
        if not ids:
            return [], False
        cursor.execute(
            "SELECT id FROM tracking_conversion WHERE merchant_id = %s AND id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
            [merchant.pk, ids],
        )
    # Decided by a transaction that committed while this one was claiming (a new statement sees it): left out.
    done = set(
        Work.objects.for_merchant(merchant)
        .filter(conversion_id__in=ids, refund__isnull=True)
        .values_list("conversion_id", flat=True)
    )
    return [pk for pk in ids if pk not in done], len(ids) >= limit


def _decide(*, merchant, conversion_ids: list[int]) -> dict[int, str]:
    """Score the claimed orders together, decide the fast path's together, the others one at a time."""
    assessments, one_by_one = conversions_assess(merchant_id=merchant.pk, conversion_ids=conversion_ids)
    conversions = _load(merchant=merchant, conversion_ids=[pk for pk in conversion_ids if pk in assessments])
    rules: dict[int, list[RewardRule]] = {}
    fast, review = [], []
    for conversion in conversions:
        program = conversion.program
        if program.pk not in rules:
            rules[program.pk] = program_rules(program)
        if _fast(conversion, assessments[conversion.pk], rules[program.pk]):
            fast.append(conversion)
        elif assessments[conversion.pk].decision == Decision.REVIEW and conversion.referral is not None:
            review.append(conversion)  # nothing to pay until a person decides: a Work row and the shop's events
        else:
            one_by_one.append(conversion.pk)
    outcomes: dict[int, str] = {}
    if fast:
        if _works_insert(merchant=merchant, conversions=fast):
            _decide_fast(merchant=merchant, conversions=fast, assessments=assessments, rules=rules)
            outcomes.update((c.pk, "approved") for c in fast)
        else:  # an order decided meanwhile (the unique constraint): each on its own, where that is seen
            one_by_one += [c.pk for c in fast]
    if review:
        if _works_insert(merchant=merchant, conversions=review, stage=Work.Stage.REVIEW, decision=""):
            _events_emit(merchant=merchant, conversions=review, assessments=assessments, made={})
            outcomes.update((c.pk, "review") for c in review)
        else:
            one_by_one += [c.pk for c in review]
    for pk in sorted(one_by_one, key=conversion_ids.index):
        try:
            with transaction.atomic():
                outcomes[pk] = conversion_process(merchant=merchant, conversion_id=pk)
        except (OperationalError, InterfaceError):
            raise  # a deadlock or a lost connection: the whole batch is retried
        except Exception:  # one broken order must not cost the others; its own message or the sweeper retries it
            logger.exception("could not decide conversion %s of merchant %s", pk, merchant.pk)
    return outcomes


def _load(*, merchant, conversion_ids: list[int]) -> list[Conversion]:
    conversions = list(
        Conversion.objects.for_merchant(merchant)
        .select_related(
            "program",
            "referral__referrer",
            "referral__referee",
            "referral__program",
            "referral__code",
            "referral__variant",
        )
        .filter(pk__in=conversion_ids)
        .order_by("pk")
    )
    for conversion in conversions:
        referral = conversion.referral
        for row in (conversion, conversion.program, referral, referral.program, referral.referrer, referral.referee):
            if row is not None:
                row.merchant = merchant
    return conversions


def _fast(conversion: Conversion, assessment, rules: list[RewardRule]) -> bool:
    """Whether the order can be decided with the batch: approved, attributed, its referral not rejected, and its
    program's rules need nothing counted across orders (milestones, caps, budgets, each purchase's place)."""
    return (
        assessment.decision == Decision.APPROVE
        and conversion.status == Conversion.Status.ATTRIBUTED
        and conversion.referral is not None
        and conversion.referral.status != Referral.Status.REJECTED
        and conversion.program_id is not None
        and conversion.program.budget is None
        and all(
            rule.trigger in (Trigger.FIRST_PURCHASE, Trigger.SIGNUP)
            and rule.cap_per_month is None
            and rule.cap_total is None
            for rule in rules
        )
    )


def _works_insert(
    *, merchant, conversions: list[Conversion], stage: str = Work.Stage.DONE, decision: str = Decision.APPROVE
) -> bool:
    """The orders' Work rows: done and approved (the fast path), or waiting for a review with no decision acted on
    (conversion_process's row of an order in review). False (nothing written) if one exists already."""
    now = timezone.now()
    rows = [
        {
            "merchant_id": merchant.pk,
            "referral_id": c.referral_id,
            "conversion_id": c.pk,
            "stage": stage,
            "decision": decision,
            "created_at": now,
            "updated_at": now,
        }
        for c in conversions
    ]
    try:
        with transaction.atomic():
            insert_rows(Work, rows, returning=None)
    except IntegrityError:
        return False
    return True


def _decide_fast(*, merchant, conversions: list[Conversion], assessments: dict, rules: dict) -> None:
    """The fast orders' rewards, audit lines, emails and webhook events: as _decide_purchase_rewards and
    conversion_events_emit make them for one order, written with one INSERT per table."""
    with connection.cursor() as cursor:
        cursor.execute(_PURCHASE_NUMBERS, [merchant.pk, [c.pk for c in conversions]])
        numbers = dict(cursor.fetchall())
    paying: dict[int, list[RewardRule]] = {}
    for conversion in conversions:
        kept = conversion.kept_program_amount
        applicable = rules_for(
            program=conversion.program,
            variant_id=conversion.referral.variant_id,
            triggers=(Trigger.FIRST_PURCHASE,),
            at=conversion.occurred_at,
            rules=rules[conversion.program_id],
        )
        paying[conversion.pk] = [
            rule
            for rule in applicable
            if kept > 0
            and numbers[conversion.pk] == 1
            and (rule.min_order_value is None or kept >= rule.min_order_value)
        ]
    friends = _friends(merchant=merchant, conversions=conversions, paying=paying)
    made: dict[int, list[dict]] = {}
    now = timezone.now()
    for conversion in conversions:
        referral = conversion.referral
        for rule in paying[conversion.pk]:
            participant = referral.referrer if rule.side == Side.REFERRER else friends.get(referral.pk)
            if isinstance(participant, ApplicationError):  # the friend cannot join: the other side still pays
                logger.warning("no %s reward for referral %s: %s", rule.side, referral.pk, participant.message)
                continue
            if participant is None:
                continue
            reward = _reward(rule=rule, participant=participant, referral=referral, conversion=conversion, now=now)
            if reward is not None:
                made.setdefault(conversion.pk, []).append(reward)
    by_id = {rule.pk: rule for program_rules_ in rules.values() for rule in program_rules_}
    _rewards_insert(merchant=merchant, made=made, rules=by_id)
    _emails_owe(merchant=merchant, conversions=conversions, made=made)
    _events_emit(merchant=merchant, conversions=conversions, assessments=assessments, made=made)


def _friends(*, merchant, conversions: list[Conversion], paying: dict) -> dict:
    """{referral id: the friend's participant (or why they cannot join)} for the orders that pay the friend."""
    needed = {}
    for conversion in conversions:
        referral = conversion.referral
        if any(rule.side == Side.REFEREE for rule in paying[conversion.pk]):
            if referral.referee_id:
                needed.setdefault(referral.pk, referral.referee)
            elif referral.referee_external_id or referral.referee_email:
                needed.setdefault(referral.pk, None)
    missing = [c.referral for c in conversions if c.referral_id in needed and needed[c.referral_id] is None]
    unique = list({r.pk: r for r in missing}.values())
    if unique:
        needed.update(referees_join(merchant=merchant, referrals=unique))
        for conversion in conversions:  # two orders of one friend: one referral object knows the participant
            if conversion.referral_id in needed and not isinstance(needed[conversion.referral_id], ApplicationError):
                conversion.referral.referee = needed[conversion.referral_id]
    return needed


def _reward(*, rule: RewardRule, participant, referral: Referral, conversion: Conversion, now) -> dict | None:
    """The pending reward _create_reward makes for a rule without caps or budget, as a row (None: worth nothing)."""
    program = rule.program
    value = rule_value(rule, order_amount=conversion.kept_program_amount, currency=program.currency)
    if rule.unit in (Unit.MONEY, Unit.POINTS, Unit.PERCENT) and value <= 0:
        return None
    return {
        "merchant_id": program.merchant_id,
        "livemode": participant.livemode,
        "program_id": program.pk,
        "rule_id": rule.pk,
        "side": rule.side,
        "participant_id": participant.pk,
        "referral_id": referral.pk,
        "conversion_id": conversion.pk,
        "purchase": 1,
        "kind": rule.kind,
        "unit": rule.unit,
        "percent_of_order": rule.value if rule.value_type == RewardRule.ValueType.PERCENT_OF_ORDER else None,
        "max_value": rule.max_value,
        "min_order_value": rule.min_order_value,
        "value": value,
        "original_value": value,
        "currency": program.currency,
        "description": rule.description or (rule.pool.description if rule.pool_id else ""),
        "status": Reward.Status.PENDING,
        "hold_until": now + datetime.timedelta(days=rule.hold_days),
        "created_at": now,
    }


def _rewards_insert(*, merchant, made: dict[int, list[dict]], rules: dict[int, RewardRule]) -> None:
    """Insert the rewards (their ids set on the rows) and their first audit lines. One the unique constraints
    refuse (decided before) is left out, as _create_reward leaves it, and the others are inserted one at a time."""
    rows = [reward for rewards in made.values() for reward in rewards]
    if not rows:
        return
    try:
        with transaction.atomic():
            for row, pk in zip(rows, insert_rows(Reward, rows), strict=True):
                row["id"] = pk
    except IntegrityError:
        for row in rows:
            try:
                with transaction.atomic():
                    [row["id"]] = insert_rows(Reward, [row])
            except IntegrityError:
                row["id"] = None
        for conversion_id, rewards in made.items():
            made[conversion_id] = [r for r in rewards if r["id"] is not None]
        rows = [row for row in rows if row["id"] is not None]
    insert_rows(
        RewardEvent,
        [
            {
                "merchant_id": merchant.pk,
                "reward_id": r["id"],
                "from_status": "",
                "to_status": r["status"],
                "actor": ACTOR,
                "reason": "",
                "at": r["created_at"],
            }
            for r in rows
        ],
        returning=None,
    )
    due = [r["id"] for r in rows if rules[r["rule_id"]].hold_days == 0]
    if due:
        enqueue_on_commit("rewards.release", merchant_id=merchant.pk, reward_ids=due)


def _emails_owe(*, merchant, conversions: list[Conversion], made: dict[int, list[dict]]) -> None:
    """The referrer's "your friend bought" email, once per order (notification_owe's rows, in one INSERT)."""
    notes = []
    for conversion in conversions:
        pending = [
            r
            for r in made.get(conversion.pk, [])
            if r["side"] == Side.REFERRER and r["status"] == Reward.Status.PENDING
        ]
        if pending:
            notes.append(
                {
                    "merchant_id": merchant.pk,
                    "kind": Notification.Kind.FRIEND_PURCHASED,
                    "key": f"conversion:{conversion.pk}",
                    "participant_id": pending[0]["participant_id"],
                    "reward_id": pending[0]["id"],
                }
            )
    if not notes:
        return
    try:
        with transaction.atomic():
            ids = insert_rows(Notification, notes)
    except IntegrityError:  # owed before: one at a time, each once
        rewards = (
            Reward.objects.for_merchant(merchant).select_related("participant").in_bulk([n["reward_id"] for n in notes])
        )
        for note in notes:
            reward = rewards[note["reward_id"]]
            notification_owe(note["kind"], key=note["key"], participant=reward.participant, reward=reward)
        return
    enqueue_on_commit("rewards.send_notifications", merchant_id=merchant.pk, notification_ids=ids)


def _events_emit(*, merchant, conversions: list[Conversion], assessments: dict, made: dict) -> None:
    """conversion_events_emit for orders looked at the first time: referral.created where the order opened the
    referral (the first order decided of a friend who never signed up), conversion.attributed for an attributed
    order, and fraud.flagged for one not approved."""
    referral_ids = {c.referral_id for c in conversions}
    worked_before = set(
        Work.objects.for_merchant(merchant)
        .filter(referral_id__in=referral_ids)
        .exclude(conversion_id__in=[c.pk for c in conversions])
        .values_list("referral_id", flat=True)
    )
    events = []
    for conversion in conversions:
        referral = conversion.referral
        if referral.signed_up_at is None and referral.pk not in worked_before:
            worked_before.add(referral.pk)
            events.append((conversion.livemode, "referral.created", _lazy(referral_data, referral)))
        assessment = assessments[conversion.pk]
        summary = assessment_summary(assessment)
        ids = [r["id"] for r in made.get(conversion.pk, [])]
        if conversion.status == Conversion.Status.ATTRIBUTED:
            data = _lazy(_conversion_data, conversion, summary, ids)
            events.append((conversion.livemode, "conversion.attributed", data))
        if assessment.decision != Decision.APPROVE:
            data = _lazy(flagged_data, assessment, referral, conversion)
            events.append((conversion.livemode, "fraud.flagged", data))
    webhook_emit_many(merchant=merchant, events=events)


def _lazy(function, *args):
    return lambda: function(*args)


def _conversion_data(conversion: Conversion, summary: dict, reward_ids: list[int]) -> dict:
    """conversion.attributed's data, built only when an endpoint listens: the order, its score, its new rewards."""
    rewards = list(Reward.objects.for_merchant(conversion.merchant).filter(pk__in=reward_ids).order_by("pk"))
    context = {"fraud": {conversion.pk: summary}, "rewards": {conversion.pk: rewards}}
    return dict(ConversionOutput(conversion, context=context).data)
