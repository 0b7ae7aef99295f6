"""Events in, signed HTTP requests out: webhook_emit, the attempt of a delivery, retries, resends and the sweeper.

Where things wait: a delivery's `next_attempt_at` in PostgreSQL is the truth. Celery only carries "look at delivery
N now" (on commit, or with a countdown of at most a minute); beat's sweeper enqueues whatever is due, so a lost
message or a Redis restart delays a webhook but never drops it.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from referral_saas.celery import app
from referral_saas.errors import Unprocessable
from referral_saas.tenancy.models import Merchant
from referral_saas.webhooks import sending
from referral_saas.webhooks.models import EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from referral_saas.webhooks.services.endpoints import (
    endpoint_delete,
    endpoint_disable,
    endpoint_disabled_notify,
    endpoint_signing_secrets,
)
from referral_saas.webhooks.services.listeners import domain_events_tell, once

logger = logging.getLogger(__name__)

# Waits after the 1st, 2nd, ... failed attempt: ten attempts over about three days.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1  # +-10 %, so endpoints that failed together are not retried together
RETRY_AFTER_MAX = timedelta(hours=24)  # a Retry-After further off than this is read as this
DISABLE_AFTER_FAILING = timedelta(days=3)  # an endpoint that has not succeeded for this long is turned off
COUNTDOWN_MAX = timedelta(minutes=1)  # shorter waits ride on a Celery countdown; longer ones wait for the sweeper
REENQUEUE_AFTER = timedelta(minutes=5)  # the sweeper enqueues a due delivery again when its message seems lost
SWEEP_BATCH = 500
_MSG_ID_ALPHABET = string.ascii_letters + string.digits


def _lease() -> timedelta:
    # An attempt in flight pushes next_attempt_at this far ahead: longer than a task may live, so a second worker
    # never picks the same attempt, and a worker that died mid-attempt is retried by the sweeper afterwards.
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def new_msg_id() -> str:
    return "msg_" + "".join(secrets.choice(_MSG_ID_ALPHABET) for _ in range(24))


def retry_delay(*, failed_attempts: int, retry_after_seconds: float | None = None) -> timedelta:
    """How long to wait after the n-th failed attempt: the schedule with jitter, but never sooner than the
    endpoint's Retry-After (read as at most 24 hours)."""
    base = RETRY_SCHEDULE[min(failed_attempts, len(RETRY_SCHEDULE)) - 1]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after_seconds is not None:
        delay = max(delay, min(timedelta(seconds=retry_after_seconds), RETRY_AFTER_MAX))
    return delay


DELIVER_TASK = "referral_saas.webhooks.deliver"  # by name: the services never import the tasks that call them


def _enqueue(*, merchant_id: int, delivery_id: int, countdown: float | None = None) -> None:
    # No publish retries: with Redis down this fails fast (logged by on_commit) and the sweeper sends it later.
    app.send_task(
        DELIVER_TASK,
        kwargs={"merchant_id": merchant_id, "delivery_id": delivery_id},
        countdown=countdown,
        retry=False,
    )


def _enqueue_on_commit(*, merchant_id: int, delivery_id: int, countdown: float | None = None) -> None:
    # robust: a broker outage must not fail the caller's request; the sweeper enqueues it later.
    transaction.on_commit(
        partial(_enqueue, merchant_id=merchant_id, delivery_id=delivery_id, countdown=countdown), robust=True
    )


# --- events -----------------------------------------------------------------------------------------------------


# The endpoints listening to an event, share-locked until the caller's transaction ends: one deleted meanwhile would
# fail the caller's commit (its deliveries' foreign key is checked then), so a delete waits for that commit instead.
_LISTENING_ENDPOINTS = """
    SELECT id FROM webhooks_webhookendpoint
    WHERE merchant_id = %s AND livemode = %s AND enabled
      AND (events = '{}'::varchar[] OR events @> ARRAY[%s]::varchar[])
    ORDER BY id FOR KEY SHARE
"""


def webhook_emit(
    *, merchant: Merchant, livemode: bool, event_type: str, data: dict | Callable[[], dict]
) -> WebhookMessage | None:
    """Store one event for every enabled endpoint of this mode that subscribes to `event_type`, and deliver it
    after the caller's transaction commits (nothing is sent for a rolled-back write).

    With no such endpoint this is one indexed query (in the caller's transaction, which it opens if there is none)
    and writes nothing (returns None). `data` is the event's object as the API shows it (Decimals and datetimes
    become strings), or a function that builds it: called only when someone listens, so events nobody subscribed
    to cost no serialization.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}; known types: {', '.join(EVENT_TYPES)}.")
    if not (isinstance(data, dict) or callable(data)):
        raise TypeError("webhook_emit: data must be a dict or a function returning one.")
    if not connection.in_atomic_block:  # the lock below must last until the deliveries are committed
        with transaction.atomic():
            return webhook_emit(merchant=merchant, livemode=livemode, event_type=event_type, data=data)
    data = once(data)
    domain_events_tell(merchant=merchant, events=[(livemode, event_type, data)])
    with connection.cursor() as cursor:
        cursor.execute(_LISTENING_ENDPOINTS, [merchant.pk, livemode, event_type])
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    if not endpoint_ids:
        return None
    if callable(data):
        data = data()
        if not isinstance(data, dict):
            raise TypeError("webhook_emit: the data function must return a dict.")
    now = timezone.now()
    with transaction.atomic():
        message = WebhookMessage.objects.for_merchant(merchant).create(
            msg_id=new_msg_id(), type=event_type, livemode=livemode, payload=data, created_at=now
        )
        deliveries = WebhookDelivery.objects.for_merchant(merchant).bulk_create(
            [
                WebhookDelivery(
                    merchant=merchant,
                    endpoint_id=endpoint_id,
                    message=message,
                    next_attempt_at=now,
                    enqueued_at=now,
                    created_at=now,
                )
                for endpoint_id in endpoint_ids
            ]
        )
        for delivery in deliveries:
            _enqueue_on_commit(merchant_id=merchant.pk, delivery_id=delivery.pk)
    return message


# Every enabled endpoint of a mode with what it subscribes to, share-locked as above.
_ENABLED_ENDPOINTS = """
    SELECT id, events FROM webhooks_webhookendpoint
    WHERE merchant_id = %s AND livemode = %s AND enabled
    ORDER BY id FOR KEY SHARE
"""


def webhook_emit_many(*, merchant: Merchant, events: list[tuple[bool, str, dict | Callable[[], dict]]]) -> int:
    """webhook_emit for many events of one merchant at once, `events` being (livemode, event type, data) in the
    order they happened: one query per mode to find the listening endpoints, and with any, one INSERT of the
    messages and one of their deliveries, in that order. Returns how many messages were stored. The caller is in a
    transaction (the deliveries are enqueued when it commits)."""
    for _livemode, event_type, _data in events:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"Unknown webhook event type {event_type!r}; known types: {', '.join(EVENT_TYPES)}.")
    events = [(livemode, event_type, once(data)) for livemode, event_type, data in events]
    domain_events_tell(merchant=merchant, events=events)
    endpoints: dict[bool, list[tuple[int, list[str]]]] = {}
    with connection.cursor() as cursor:
        for livemode in sorted({livemode for livemode, _type, _data in events}):
            cursor.execute(_ENABLED_ENDPOINTS, [merchant.pk, livemode])
            endpoints[livemode] = cursor.fetchall()
    now = timezone.now()
    wanted: list[tuple[WebhookMessage, list[int]]] = []
    for livemode, event_type, data in events:
        listening = [pk for pk, types in endpoints[livemode] if not types or event_type in types]
        if not listening:
            continue
        payload = data() if callable(data) else data
        if not isinstance(payload, dict):
            raise TypeError("webhook_emit: the data function must return a dict.")
        message = WebhookMessage(
            merchant=merchant, msg_id=new_msg_id(), type=event_type, livemode=livemode, payload=payload, created_at=now
        )
        wanted.append((message, listening))
    if not wanted:
        return 0
    WebhookMessage.objects.for_merchant(merchant).bulk_create([message for message, _ids in wanted])
    deliveries = WebhookDelivery.objects.for_merchant(merchant).bulk_create(
        [
            WebhookDelivery(
                merchant=merchant,
                endpoint_id=endpoint_id,
                message=message,
                next_attempt_at=now,
                enqueued_at=now,
                created_at=now,
            )
            for message, endpoint_ids in wanted
            for endpoint_id in endpoint_ids
        ]
    )
    for delivery in deliveries:
        _enqueue_on_commit(merchant_id=merchant.pk, delivery_id=delivery.pk)
    return len(wanted)


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, now, with the same webhook-id (so the shop can tell it is the same event) and a
    fresh retry schedule. Refused while its endpoint is disabled."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_merchant(delivery.merchant_id)
            .select_for_update(of=("self",))
            .select_related("endpoint")
            .get(pk=delivery.pk)
        )
        if not delivery.endpoint.enabled:
            raise Unprocessable(
                _("The endpoint %(url)s is disabled; enable it first.") % {"url": delivery.endpoint.url},
                code="endpoint_disabled",
            )
        now = timezone.now()
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.run_attempts = 0
        delivery.next_attempt_at = now
        delivery.enqueued_at = now
        delivery.save(update_fields=["status", "run_attempts", "next_attempt_at", "enqueued_at"])
        _enqueue_on_commit(merchant_id=delivery.merchant_id, delivery_id=delivery.pk)
    return delivery


# --- one attempt ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    merchant_id: int
    delivery_id: int
    endpoint_id: int
    number: int  # the delivery's `attempts` after this claim: who records the outcome
    url: str
    msg_id: str
    body: bytes
    secrets: list[str]
    started_at: datetime


def delivery_attempt(*, merchant_id: int, delivery_id: int) -> str | None:
    """Make the due attempt of one delivery and record it; returns the delivery's status afterwards, or None when
    nothing was due (already delivered, not due yet, or another worker holds it).

    Safe to run twice and concurrently: the attempt is claimed under a row lock with SKIP LOCKED and leased by
    moving next_attempt_at ahead, so only one caller sends it. No database transaction stays open during the
    HTTP request.
    """
    claim = _claim(merchant_id=merchant_id, delivery_id=delivery_id)
    if claim is None:
        return None
    headers = sending.signed_headers(msg_id=claim.msg_id, body=claim.body, secrets=claim.secrets, at=timezone.now())
    try:
        outcome = sending.post(claim.url, body=claim.body, headers=headers)
    except Exception as exc:  # post never raises, but the task's soft time limit can interrupt it anywhere
        logger.warning("webhook attempt cut off", exc_info=True, extra={"delivery_id": claim.delivery_id})
        outcome = sending.Outcome(error=f"The attempt was cut off before an answer ({type(exc).__name__}).")
    return _record(claim=claim, outcome=outcome)


def _claim(*, merchant_id: int, delivery_id: int) -> _Claim | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_merchant(merchant_id)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "message")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        endpoint, message = delivery.endpoint, delivery.message
        if not endpoint.enabled:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            delivery.last_error = _("The endpoint was disabled.")
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        if delivery.run_attempts >= MAX_ATTEMPTS:
            # Attempts whose worker died before recording an answer still count: never retried forever.
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            delivery.last_error = _("Gave up after %(n)d attempts.") % {"n": delivery.run_attempts}
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            return None
        delivery.attempts += 1
        delivery.run_attempts += 1
        delivery.next_attempt_at = now + _lease()
        delivery.enqueued_at = None
        delivery.last_attempt_at = now
        delivery.save(update_fields=["attempts", "run_attempts", "next_attempt_at", "enqueued_at", "last_attempt_at"])
    return _Claim(
        merchant_id=merchant_id,
        delivery_id=delivery.pk,
        endpoint_id=endpoint.pk,
        number=delivery.attempts,
        url=endpoint.url,
        msg_id=message.msg_id,
        body=sending.body_for(event_type=message.type, created_at=message.created_at, data=message.payload),
        secrets=endpoint_signing_secrets(endpoint=endpoint),
        started_at=now,
    )


def _record(*, claim: _Claim, outcome: sending.Outcome) -> str | None:
    now = timezone.now()
    with transaction.atomic():
        # Endpoint first, then the delivery: the same lock order as endpoint_disable, so records never deadlock.
        # NO KEY: new deliveries of this endpoint (webhook_emit's inserts) are not held up meanwhile.
        endpoint = (
            WebhookEndpoint.objects.for_merchant(claim.merchant_id)
            .select_for_update(no_key=True)
            .filter(pk=claim.endpoint_id)
            .first()
        )
        delivery = (
            WebhookDelivery.objects.for_merchant(claim.merchant_id).select_for_update().filter(pk=claim.delivery_id)
        ).first()
        if endpoint is None or delivery is None:  # deleted while the request was in flight
            return None
        WebhookAttempt.objects.for_merchant(claim.merchant_id).create(
            merchant_id=claim.merchant_id,
            delivery=delivery,
            number=claim.number,
            url=claim.url,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            created_at=claim.started_at,
        )
        if delivery.attempts != claim.number:  # a resend started a newer attempt meanwhile: that one decides
            return delivery.status
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
        if outcome.succeeded:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, None
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                endpoint.save(update_fields=["failing_since"])
        else:
            _after_failure(endpoint=endpoint, delivery=delivery, claim=claim, outcome=outcome, now=now)
        delivery.save(update_fields=["status", "next_attempt_at", "enqueued_at", "last_status_code", "last_error"])
    # REST hooks (Zapier): 410 Gone from the target means the subscription is over; it is removed, as if
    # unsubscribed, with its deliveries. After the attempt is recorded, in a transaction of its own.
    if outcome.gone and not outcome.succeeded and endpoint.is_rest_hook and endpoint_delete(endpoint=endpoint):
        logger.info("REST hook subscription removed: its target answered 410", extra={"endpoint_id": endpoint.pk})
    return delivery.status


def _after_failure(*, endpoint, delivery, claim: _Claim, outcome: sending.Outcome, now: datetime) -> None:
    if outcome.gone and endpoint.is_rest_hook:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None  # _record removes the hook
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = claim.started_at
        endpoint.save(update_fields=["failing_since"])
    reason = ""
    if outcome.gone:
        reason = WebhookEndpoint.DisabledReason.GONE
    elif endpoint.failing_since <= now - DISABLE_AFTER_FAILING:
        reason = WebhookEndpoint.DisabledReason.FAILING
    if reason and endpoint_disable(endpoint=endpoint, reason=reason):
        logger.warning("webhook endpoint disabled: %s", reason, extra={"endpoint_id": endpoint.pk})
        transaction.on_commit(
            partial(endpoint_disabled_notify, merchant_id=claim.merchant_id, endpoint_id=endpoint.pk), robust=True
        )
    if not endpoint.enabled or delivery.run_attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        return
    delay = retry_delay(failed_attempts=delivery.run_attempts, retry_after_seconds=outcome.retry_after_seconds)
    delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, now + delay
    if delay <= COUNTDOWN_MAX:
        delivery.enqueued_at = now
        _enqueue_on_commit(
            merchant_id=claim.merchant_id, delivery_id=delivery.pk, countdown=delay.total_seconds() + 0.05
        )


# --- the sweeper ------------------------------------------------------------------------------------------------


def deliveries_sweep(*, limit: int = SWEEP_BATCH) -> list[int]:
    """Enqueue the pending deliveries that are due and not enqueued in the last few minutes (retries too far off
    for a countdown, messages lost by the broker, attempts of a worker that died). Returns their ids.

    Deliberately across merchants (beat has no tenant): `all_merchants`.
    """
    now = timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.all_merchants.select_for_update(skip_locked=True)
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - REENQUEUE_AFTER))
            .order_by("next_attempt_at")
            .values_list("pk", "merchant_id")[:limit]
        )
        if due:
            WebhookDelivery.all_merchants.filter(pk__in=[pk for pk, _merchant_id in due]).update(enqueued_at=now)
        for pk, merchant_id in due:
            _enqueue_on_commit(merchant_id=merchant_id, delivery_id=pk)
    return [pk for pk, _merchant_id in due]


MESSAGE_RETENTION = timedelta(days=30)


def messages_purge(*, now: datetime | None = None) -> int:
    """Forget events older than 30 days whose deliveries are all finished (their attempts go with them), merchant
    by merchant along the (merchant, created_at) index. Returns how many messages were deleted."""
    from django.db.models import Exists, OuterRef

    cutoff = (now or timezone.now()) - MESSAGE_RETENTION
    deleted = 0
    for merchant_id in Merchant.objects.values_list("pk", flat=True):
        pending = WebhookDelivery.objects.for_merchant(merchant_id).filter(
            message_id=OuterRef("pk"), status=WebhookDelivery.Status.PENDING
        )
        old = WebhookMessage.objects.for_merchant(merchant_id).filter(created_at__lt=cutoff).filter(~Exists(pending))
        deleted += old.delete()[1].get(WebhookMessage._meta.label, 0)
    return deleted


def messages_redact(*, merchant_id: int, identifiers: list[str], values: list[str]) -> int:
    """A person was erased: the stored events that name them (by one of `identifiers`: their email, customer id)
    keep their shape, but every "email", "external_id" or "name" equal to one of `values` (case aside) becomes
    null, so a retry or the admin's event view no longer shows them. Returns how many events were changed."""
    identifiers = [i for i in identifiers if i]
    forget = {v.casefold() for v in values if v}
    if not identifiers or not forget:
        return 0
    mentions = Q()
    for identifier in identifiers:
        mentions |= Q(payload__icontains=json.dumps(identifier, ensure_ascii=False))  # the JSON string, quoted
    changed = 0
    messages = WebhookMessage.objects.for_merchant(merchant_id).filter(mentions).only("pk", "payload")
    for message in messages.iterator(chunk_size=500):
        redacted = _without(message.payload, forget)
        if redacted != message.payload:
            WebhookMessage.objects.for_merchant(merchant_id).filter(pk=message.pk).update(payload=redacted)
            changed += 1
    return changed


PERSONAL_KEYS = frozenset({"email", "external_id", "name"})


def _without(value, forget: set[str]):
    if isinstance(value, dict):
        return {
            key: None
            if key in PERSONAL_KEYS and isinstance(item, str) and item.casefold() in forget
            else _without(item, forget)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without(item, forget) for item in value]
    return value
