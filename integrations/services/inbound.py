"""Inbound events: stored once as received, then processed by a worker, retried until done.

The endpoint stores the raw body and answers at once; the platform's own retries and our reconciliation may bring
the same event again, which the constraint `inbound_event_once` (merchant, connection, platform event id) turns into
one row. Processing locks the row, so two workers never process one event at the same time, and every write it
leads to is idempotent by its own constraint (one conversion per order id, one refund per refund id), so processing
an event twice (a replay, a worker killed after the writes) changes nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from integrations.http import PlatformError
from integrations.models import Connection, InboundEvent
from integrations.providers import provider_for
from integrations.providers.base import BadPayload, Inbound, load_json
from integrations.services.processing import Waiting, apply_actions
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import ApplicationError

logger = logging.getLogger(__name__)

PROCESS_TASK = "integrations.process_event"
# Failed events are tried again with growing pauses (1 min, 2, 4 ... capped at 6 h) for about 3 days; refunds
# waiting for their order keep waiting as long (the order may come by reconciliation).
MAX_ATTEMPTS = 20
MAX_PAUSE = timedelta(hours=6)
# An event still "received" this long after its last try was lost on the way to a worker: the sweeper sends it.
LOST_AFTER = timedelta(minutes=2)
LAST_EVENT_RESOLUTION = timedelta(seconds=60)
KEPT_HEADERS = ("topic", "shop-domain", "event-id", "webhook-id", "triggered-at", "api-version", "delivery-id",
                "webhook-source", "webhook-resource", "webhook-event")  # fmt: skip


def _kept_headers(headers: Mapping[str, str]) -> dict:
    return {
        name: value for name, value in headers.items() if any(name.lower().endswith(suffix) for suffix in KEPT_HEADERS)
    }


def inbound_event_store(
    *,
    connection: Connection,
    inbound: Inbound,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    source: str = InboundEvent.Source.WEBHOOK,
) -> tuple[InboundEvent, bool]:
    """Store an event once per platform event id and hand it to a worker. Returns (event, created): the same event
    again (the platform retried, reconciliation found it) is the stored one, processed no second time."""
    scope = InboundEvent.objects.for_merchant(connection.merchant)
    now = timezone.now()
    try:
        with transaction.atomic():
            event = scope.create(
                connection=connection,
                event_id=inbound.event_id[:255],
                topic=inbound.topic[:100],
                order_ref=inbound.order_ref[:200],
                source=source,
                body=body,
                headers=_kept_headers(headers or {}),
                next_attempt_at=now + LOST_AFTER,
            )
            # At most once a minute: every webhook of a busy shop updating its one row would queue them all on
            # that row's lock.
            Connection.objects.for_merchant(connection.merchant_id).filter(
                Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - LAST_EVENT_RESOLUTION), pk=connection.pk
            ).update(last_event_at=now)
            enqueue_on_commit(PROCESS_TASK, merchant_id=connection.merchant_id, event_id=event.pk)
    except IntegrityError:
        existing = scope.filter(connection=connection, event_id=inbound.event_id[:255]).first()
        if existing is None:  # pragma: no cover - the conflicting row must exist
            raise
        return existing, False
    return event, True


def _pause(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_PAUSE)


class RetryLater(Exception):
    """The event could not be processed now (the platform or our database failed): the task tries again."""

    def __init__(self, message: str, *, countdown: float):
        super().__init__(message)
        self.countdown = countdown


def inbound_event_process(*, merchant_id: int, event_id: int) -> str:
    """Process one stored event: read it, let its provider say what it means, apply that through the services of
    the apps below. Returns the event's status. A transient failure raises RetryLater (the task retries; the sweeper
    sends the event again if the task's retries run out); a refund whose order has not arrived waits for it; an
    event that cannot be read or is refused fails, visibly, until replayed."""
    scope = InboundEvent.objects.for_merchant(merchant_id)
    with transaction.atomic():
        event = scope.select_for_update(of=("self",)).select_related("connection").filter(pk=event_id).first()
        if event is None or event.status in (InboundEvent.Status.PROCESSED, InboundEvent.Status.IGNORED):
            return event.status if event else "missing"
        connection = event.connection
        event.attempts += 1
        try:
            with transaction.atomic():  # a savepoint: a refused write leaves the event's own update possible
                outcome = _process(event, connection)
        except Waiting as exc:
            # Stripe's refund of an invoice payment names only the payment intent; asked, Stripe tells the invoice:
            # the event waits under the order that will come, so that order wakes it.
            event.order_ref = exc.order_ref[:200]
            return _finish(event, InboundEvent.Status.WAITING, error=str(exc), retry=True)
        except (BadPayload, ApplicationError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            return _finish(event, InboundEvent.Status.FAILED, error=f"{type(exc).__name__}: {message}", retry=False)
        except PlatformError as exc:
            _finish(event, InboundEvent.Status.FAILED, error=str(exc), retry=exc.transient)
            if not exc.transient:
                return event.status
            countdown = _pause(event.attempts).total_seconds()
        except DatabaseError as exc:
            _finish(event, InboundEvent.Status.FAILED, error=f"{type(exc).__name__}: {exc}", retry=True)
            countdown = _pause(event.attempts).total_seconds()
        else:
            status = InboundEvent.Status.IGNORED if outcome.ignored else InboundEvent.Status.PROCESSED
            return _finish(event, status, outcome=outcome.summary)
    raise RetryLater(event.error, countdown=countdown)


def _process(event: InboundEvent, connection: Connection):
    provider = provider_for(connection.provider)
    payload = load_json(bytes(event.body))
    actions = provider.interpret(connection=connection, topic=event.topic, payload=payload)
    return apply_actions(connection=connection, event=event, actions=actions)


def _finish(event: InboundEvent, status: str, *, error: str = "", outcome: str = "", retry: bool = False) -> str:
    now = timezone.now()
    event.status, event.error, event.outcome = status, error[:4000], outcome[:300] or event.outcome
    event.next_attempt_at = now + _pause(event.attempts) if retry and event.attempts < MAX_ATTEMPTS else None
    if status in (InboundEvent.Status.PROCESSED, InboundEvent.Status.IGNORED):
        event.processed_at = now
    event.save(update_fields=["status", "error", "outcome", "attempts", "next_attempt_at", "processed_at", "order_ref"])
    if error and status == InboundEvent.Status.FAILED:
        Connection.objects.for_merchant(event.merchant_id).filter(pk=event.connection_id).update(
            last_error=f"{event.topic} {event.event_id}: {error}"[:2000], last_error_at=now
        )
    if status == InboundEvent.Status.PROCESSED and event.order_ref:
        _wake_waiting(event)
    return status


def _wake_waiting(event: InboundEvent) -> None:
    """An order arrived: refunds that came before it are processed now, not at their next retry."""
    waiting = InboundEvent.objects.for_merchant(event.merchant_id).filter(
        connection_id=event.connection_id, order_ref=event.order_ref, status=InboundEvent.Status.WAITING
    )
    for pk in waiting.exclude(pk=event.pk).values_list("pk", flat=True):
        enqueue_on_commit(PROCESS_TASK, merchant_id=event.merchant_id, event_id=pk)


def inbound_event_replay(*, event: InboundEvent) -> InboundEvent:
    """Process a stored event again (the admin's replay button): the attempts count on, the outcome is replaced.
    Safe for any event, processed ones included: every write it leads to is idempotent."""
    with transaction.atomic():
        locked = InboundEvent.objects.for_merchant(event.merchant_id).select_for_update().get(pk=event.pk)
        locked.status, locked.error, locked.next_attempt_at = InboundEvent.Status.RECEIVED, "", timezone.now()
        locked.save(update_fields=["status", "error", "next_attempt_at"])
        enqueue_on_commit(PROCESS_TASK, merchant_id=locked.merchant_id, event_id=locked.pk)
    return locked


def inbound_events_sweep(*, limit: int = 500) -> list[int]:
    """Beat: send again every event that is due (a failed or waiting one at its next try, a received one whose
    message was lost). Cross-tenant on purpose (InboundEvent.all_merchants)."""
    due = (
        InboundEvent.all_merchants.filter(
            status__in=[InboundEvent.Status.RECEIVED, InboundEvent.Status.WAITING, InboundEvent.Status.FAILED],
            next_attempt_at__lte=timezone.now(),
        )
        .order_by("next_attempt_at")
        .values_list("merchant_id", "pk")[:limit]
    )
    sent = []
    with transaction.atomic():
        for merchant_id, pk in due:
            enqueue_on_commit(PROCESS_TASK, merchant_id=merchant_id, event_id=pk)
            sent.append(pk)
        # Not sent again by the next sweep while the worker has it (processing sets the real next try).
        InboundEvent.all_merchants.filter(pk__in=sent).update(next_attempt_at=timezone.now() + LOST_AFTER)
    return sent
