"""Marketing tools: what our domain events make for them (the sync log, OutboundSync), sending it, retrying it.

1. `marketing_events_hear` is registered as a domain-event listener (referral_saas/webhooks/services/listeners.py):
   inside the transaction of every event it writes one row per (connection, kind) the event makes, for participants
   who gave marketing consent, and enqueues the sending on commit. A rolled-back write leaves no row; an event told
   twice is one row (`outbound_sync_once`).
2. `marketing_sync_send` (the Celery task of a connection) claims a batch of due rows, builds the participants'
   profiles as they are now, sends them (in the tool's batches), then the events and erasures. 429 and 5xx put the
   rest of the batch off (for the tool's Retry-After, else a growing pause); another 4xx (or a batch call's answer
   naming one member as refused: `Sent.refused`) fails that row and is shown as
   the connection's last error. The rows in PostgreSQL are the truth: the beat sweeper sends what is due.
3. An erasure (participant_erase: our portal, the ops admin, a shop's redact request) becomes a delete call on every
   tool that received the person, with the email kept only until it is sent; pending rows of theirs are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.http import PlatformError
from integrations.models import Connection, OutboundSync
from integrations.providers import marketing_tool_for
from integrations.providers.marketing import MarketingTool, NotSendable, Sent, key_of, subject_of
from integrations.selectors import Profile, marketing_connections_of, marketing_profiles
from integrations.services.connections import connection_record_error
from programs.models import Participant
from referral_saas.celery import enqueue_now, enqueue_on_commit

logger = logging.getLogger(__name__)

SYNC_TASK = "integrations.marketing_sync"
BATCH = 100
MAX_ATTEMPTS = 12  # pauses of 1, 2, 4 ... minutes capped at 6 h: about two days
MAX_PAUSE = timedelta(hours=6)
RETRY_AFTER_MAX = timedelta(hours=24)
COUNTDOWN_MAX = 60.0  # shorter waits ride on a Celery countdown; longer ones wait for the sweeper
SWEEP_LIMIT = 500
Kind, Status = OutboundSync.Kind, OutboundSync.Status


def _lease() -> timedelta:
    # Rows being sent are pushed this far ahead: longer than a task may live, so no second worker takes them, and
    # rows of a worker that died are due again afterwards.
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def pause(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait after the n-th failed attempt: what the tool's Retry-After asked for (a rate limit says exactly when
    it lifts; read as 1 s to 24 h), else 1, 2, 4 ... minutes (at most 6 h)."""
    if retry_after is not None:
        return min(max(timedelta(seconds=retry_after), timedelta(seconds=1)), RETRY_AFTER_MAX)
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_PAUSE)


def _tool(connection: Connection) -> MarketingTool | None:
    return marketing_tool_for(connection.provider)


# --- 1. hearing domain events ----------------------------------------------------------------------------------


class Tool(NamedTuple):
    pk: int  # the connection's
    livemode: bool
    tool: MarketingTool


def marketing_events_hear(merchant, events: list[tuple[bool, str, object]]) -> None:
    """The rows our domain events make for the merchant's active marketing connections of their mode. Only
    participants with marketing consent are synced; an erasure is sent only to a tool that received the person."""
    modes = {livemode for livemode, _type, _data in events}
    connections = [
        Tool(pk, livemode, tool)
        for pk, provider, livemode in marketing_connections_of(merchant_id=merchant.pk)
        if livemode in modes and (tool := marketing_tool_for(provider)) is not None
    ]
    if not connections:
        return
    wanted: list[tuple[Tool, str, str, dict, int | None]] = []
    for livemode, event_type, data in events:
        targets = [(c, kinds) for c in connections if c.livemode == livemode and (kinds := c.tool.wants(event_type))]
        if not targets:
            continue
        payload = data() if callable(data) else data
        participant_id = subject_of(event_type, payload)
        for connection, kinds in targets:
            wanted.extend((connection, kind, event_type, payload, participant_id) for kind in kinds)
    if not wanted:
        return
    subjects = {pid for _c, kind, _t, _d, pid in wanted if pid and kind != Kind.ERASE}
    consenting = set(
        Participant.objects.for_merchant(merchant)
        .filter(pk__in=subjects, marketing_consent=True)
        .values_list("pk", flat=True)
    )
    erased = {pid for _c, kind, _t, _d, pid in wanted if kind == Kind.ERASE and pid}
    received = set()
    if erased:
        # Sent, or maybe sent (a worker took it): the tool may have them.
        received = set(
            OutboundSync.objects.for_merchant(merchant)
            .filter(participant_id__in=erased)
            .filter(Q(status=Status.SENT) | Q(status=Status.PENDING, attempts__gt=0))
            .exclude(kind=Kind.ERASE)
            .values_list("connection_id", "participant_id")
        )
        # What we kept for them is not sent any more, and stops naming them.
        OutboundSync.objects.for_merchant(merchant).filter(participant_id__in=erased).exclude(kind=Kind.ERASE).update(
            payload={}
        )
        OutboundSync.objects.for_merchant(merchant).filter(
            participant_id__in=erased, status=Status.PENDING, attempts=0
        ).exclude(kind=Kind.ERASE).update(status=Status.SKIPPED, last_error="the participant was erased")
    now = timezone.now()
    rows = []
    for connection, kind, event_type, payload, participant_id in wanted:
        tool = connection.tool
        if kind == Kind.ERASE:
            if (connection.pk, participant_id) not in received or not payload.get("email"):
                continue
            payload = {"email": payload.get("email"), "external_id": payload.get("external_id")}
        elif tool.personal and participant_id not in consenting:
            continue
        rows.append(
            OutboundSync(
                merchant=merchant,
                connection_id=connection.pk,
                kind=kind,
                key=key_of(event_type, payload if kind != Kind.ERASE else {"id": participant_id})[:200],
                event_type=event_type,
                participant_id=participant_id,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
        )
    if not rows:
        return
    OutboundSync.objects.for_merchant(merchant).bulk_create(rows, ignore_conflicts=True)
    for connection_id in sorted({row.connection_id for row in rows}):
        enqueue_on_commit(SYNC_TASK, merchant_id=merchant.pk, connection_id=connection_id)


# --- 2. sending --------------------------------------------------------------------------------------------------


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    put_off: int = 0
    skipped: int = 0
    more: bool = False  # more rows were due than one batch
    retry_in: float | None = None  # seconds until the rows put off are due (the task re-enqueues when short)
    errors: list[str] = field(default_factory=list)


def _claim(merchant_id: int, connection_id: int) -> tuple[list[OutboundSync], bool]:
    now = timezone.now()
    scope = OutboundSync.objects.for_merchant(merchant_id)
    with transaction.atomic():
        items = list(
            scope.select_for_update(skip_locked=True)
            .filter(connection_id=connection_id, status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")[: BATCH + 1]
        )
        items, more = items[:BATCH], len(items) > BATCH
        scope.filter(pk__in=[i.pk for i in items]).update(attempts=F("attempts") + 1, next_attempt_at=now + _lease())
    for item in items:
        item.attempts += 1
    return items, more


def _skip_reason(tool: MarketingTool, item: OutboundSync, profile: Profile | None) -> str:
    if item.kind == Kind.ERASE:
        return "" if (item.payload or {}).get("email") else "nothing left to identify them"
    if profile is None and tool.personal:
        return "the participant is gone"
    if tool.personal and not profile.consent:
        return "no marketing consent"
    if tool.personal and not profile.email:
        return "no email (erased?)"
    return ""


def marketing_sync_send(*, merchant_id: int, connection_id: int) -> SendResult:
    """Send a batch of the connection's due rows. Safe to run twice at once (rows are claimed with SKIP LOCKED and a
    lease) and to repeat (a tool's upsert is idempotent; events carry our key as their unique id)."""
    items, more = _claim(merchant_id, connection_id)
    result = SendResult(more=more)
    if not items:
        return result
    connection = Connection.objects.for_merchant(merchant_id).select_related("merchant").get(pk=connection_id)
    tool = _tool(connection)
    if tool is None or not connection.is_active:
        _save(items, Status.SKIPPED, error="the connection is disconnected")
        result.skipped = len(items)
        return result
    profiles = marketing_profiles(
        merchant=connection.merchant,
        participant_ids=sorted({i.participant_id for i in items if i.participant_id and i.kind != Kind.ERASE}),
    )
    units: list[tuple[list[OutboundSync], object]] = []
    skipped: list[tuple[OutboundSync, str]] = []
    by_participant: dict[int, list[OutboundSync]] = {}
    events, erasures = [], []
    for item in items:
        profile = profiles.get(item.participant_id)
        reason = _skip_reason(tool, item, profile)
        if reason:
            skipped.append((item, reason))
        elif item.kind == Kind.PROFILE:
            by_participant.setdefault(item.participant_id, []).append(item)  # one upsert of the latest state
        elif item.kind == Kind.EVENT:
            events.append((item, profile))
        else:
            erasures.append(item)
    participant_ids = list(by_participant)
    for start in range(0, len(participant_ids), tool.batch_size):
        chunk = participant_ids[start : start + tool.batch_size]
        chunk_profiles = [profiles[pid] for pid in chunk]
        units.append(
            (
                [item for pid in chunk for item in by_participant[pid]],
                lambda ps=chunk_profiles: tool.upsert_profiles(connection=connection, profiles=ps),
            )
        )
    if tool.bulk_events and len(events) > 1:  # batched where the tool's API allows it
        for start in range(0, len(events), tool.bulk_events):
            chunk = events[start : start + tool.bulk_events]
            units.append(
                ([item for item, _p in chunk], lambda c=chunk: tool.send_events(connection=connection, events=c))
            )
    else:
        for item, profile in events:
            units.append(([item], lambda i=item, p=profile: tool.send_event(connection=connection, item=i, profile=p)))
    for item in erasures:
        units.append(([item], lambda i=item: _erase(tool, connection, i)))
    for item, reason in skipped:
        _save([item], Status.SKIPPED, error=reason)
    result.skipped = len(skipped)
    if not units:
        return result
    stop: PlatformError | None = None
    if connection.setup_done_at is None and (by_participant or events):
        try:
            tool.setup(connection=connection)
        except PlatformError as exc:
            stop = exc
            if not exc.transient:
                _fail(connection, [i for unit_items, _call in units for i in unit_items], exc, result)
                return result
        else:
            Connection.objects.for_merchant(merchant_id).filter(pk=connection_id).update(setup_done_at=timezone.now())
    put_off: list[OutboundSync] = []
    for unit_items, call in units:
        if stop is not None:
            put_off.extend(unit_items)
            continue
        try:
            summary = call()
        except NotSendable as exc:
            _save(unit_items, Status.SKIPPED, error=str(exc))
            result.skipped += len(unit_items)
            continue
        except PlatformError as exc:
            if exc.transient:
                stop = exc
                put_off.extend(unit_items)
            else:
                _fail(connection, unit_items, exc, result)
            continue
        if isinstance(summary, Sent):
            refused = [i for i in unit_items if i.participant_id in summary.refused]
            for item in refused:
                _fail(connection, [item], PlatformError(summary.refused[item.participant_id]), result)
            unit_items = [i for i in unit_items if i.participant_id not in summary.refused]
            summary = summary.summary
        if unit_items:
            _save(unit_items, Status.SENT, request=summary)
            result.sent += len(unit_items)
    if put_off:
        _put_off(put_off, stop, result)
    if result.sent and not result.failed and not put_off and connection.last_error:
        Connection.objects.for_merchant(merchant_id).filter(pk=connection_id).update(last_error="")
    return result


def _erase(tool: MarketingTool, connection: Connection, item: OutboundSync) -> str:
    data = item.payload or {}
    return tool.erase(
        connection=connection,
        participant_id=item.participant_id,
        email=data.get("email"),
        external_id=data.get("external_id"),
    )


def _save(items: list[OutboundSync], status: str, *, error: str = "", request: str = "") -> None:
    now = timezone.now()
    changes = {"status": status, "last_error": error[:2000], "next_attempt_at": None}
    if status == Status.SENT:
        changes.update(sent_at=now, request=request[:500])
    if status != Status.PENDING:
        # An erasure's email is kept only until it is done with.
        OutboundSync.objects.for_merchant(items[0].merchant_id).filter(
            pk__in=[i.pk for i in items if i.kind == Kind.ERASE]
        ).update(payload={})
    OutboundSync.objects.for_merchant(items[0].merchant_id).filter(pk__in=[i.pk for i in items]).update(**changes)


def _fail(connection: Connection, items: list[OutboundSync], exc: PlatformError, result: SendResult) -> None:
    _save(items, Status.FAILED, error=str(exc))
    connection_record_error(connection=connection, error=str(exc))
    result.failed += len(items)
    result.errors.append(str(exc))


def _put_off(items: list[OutboundSync], exc: PlatformError, result: SendResult) -> None:
    now = timezone.now()
    given_up = [i for i in items if i.attempts >= MAX_ATTEMPTS]
    if given_up:
        _save(given_up, Status.FAILED, error=f"gave up after {MAX_ATTEMPTS} attempts: {exc}")
        result.failed += len(given_up)
    later = [i for i in items if i.attempts < MAX_ATTEMPTS]
    for attempts in sorted({i.attempts for i in later}):
        delay = pause(attempts, exc.retry_after)
        OutboundSync.objects.for_merchant(later[0].merchant_id).filter(
            pk__in=[i.pk for i in later if i.attempts == attempts]
        ).update(status=Status.PENDING, next_attempt_at=now + delay, last_error=str(exc)[:2000])
        seconds = delay.total_seconds()
        result.retry_in = seconds if result.retry_in is None else min(result.retry_in, seconds)
    result.put_off += len(later)
    result.errors.append(str(exc))


# --- replay, sweep, backfill ---------------------------------------------------------------------------------------


def outbound_sync_replay(*, item: OutboundSync) -> bool:
    """Send a row again now (the admin's replay: after fixing the connection). A done erasure cannot be replayed:
    the email it needed is gone. Returns whether it will be sent."""
    if item.kind == Kind.ERASE and not (item.payload or {}).get("email"):
        return False
    OutboundSync.objects.for_merchant(item.merchant_id).filter(pk=item.pk).update(
        status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    enqueue_on_commit(SYNC_TASK, merchant_id=item.merchant_id, connection_id=item.connection_id)
    return True


def outbound_syncs_sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Beat: one task per connection with rows due (retries, lost messages). Cross-tenant on purpose."""
    due = (
        OutboundSync.all_merchants.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
        .values_list("merchant_id", "connection_id")
        .distinct()[:limit]
    )
    count = 0
    for merchant_id, connection_id in due:
        enqueue_now(SYNC_TASK, merchant_id=merchant_id, connection_id=connection_id)
        count += 1
    return count


def marketing_backfill_scope(*, connection: Connection):
    """The participants a backfill sends: of the connection's mode, with marketing consent and an email."""
    return (
        Participant.objects.for_merchant(connection.merchant_id)
        .filter(livemode=connection.livemode, marketing_consent=True, email__isnull=False)
        .exclude(status=Participant.Status.ERASED)
        .order_by("pk")
    )


def marketing_backfill(*, connection: Connection, participant_ids: list[int], run: str) -> int:
    """Queue a profile sync of these participants (existing ones, joined before the connection): one row each per
    backfill `run`, so the same run repeated queues nothing twice. Returns how many were offered."""
    tool = _tool(connection)
    if tool is None or OutboundSync.Kind.PROFILE not in tool.wants("participant.created"):
        return 0
    now = timezone.now()
    rows = [
        OutboundSync(
            merchant_id=connection.merchant_id,
            connection=connection,
            kind=Kind.PROFILE,
            key=f"backfill.{run}:{pid}"[:200],
            event_type="backfill",
            participant_id=pid,
            next_attempt_at=now,
            created_at=now,
        )
        for pid in participant_ids
    ]
    with transaction.atomic():
        made = OutboundSync.objects.for_merchant(connection.merchant_id).bulk_create(rows, ignore_conflicts=True)
        enqueue_on_commit(SYNC_TASK, merchant_id=connection.merchant_id, connection_id=connection.pk)
    return len(made)


def ga4_validate(*, connection: Connection) -> list[str]:
    """The admin's "validate" of a GA4 connection: a sample referral_purchase to GA4's debug endpoint. Returns what
    GA4 objected to ([]: accepted). A failure to reach GA4 is the connection's last error and raised."""
    tool = _tool(connection)
    if tool is None or not hasattr(tool, "validate"):
        return [f"{connection.get_provider_display()} has no validation endpoint"]
    try:
        messages = tool.validate(connection=connection)
    except PlatformError as exc:
        connection_record_error(connection=connection, error=str(exc))
        raise
    return [f"{m.get('fieldPath', '')}: {m.get('description', '')} ({m.get('validationCode', '')})" for m in messages]
