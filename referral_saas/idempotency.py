"""`Idempotency-Key` on POST: same key + same body -> the first response; other body -> 422; still running -> 409.

The business write and the stored response commit in one transaction, under a transaction-scoped advisory lock on
(merchant, mode, key): a concurrent duplicate cannot take the lock and gets 409; a later one finds the record. The
lock and the lookup of the record go in one round trip, as two statements: the lookup takes its snapshot (READ
COMMITTED: one per statement) after the lock is held, so it sees the record of the lock's previous holder. (One
statement doing both would read a snapshot taken before its lock: it could miss a record committed in between.)
Only successful (2xx) responses are stored, so a client can fix a rejected request and retry with the same key.
The unique constraint on (merchant, livemode, key) is the last line of defence.

What is stored is the response body, or the view's `response.replay_data` when it sets one: a response that carries
a secret shown once (a webhook endpoint's signing secret) stores and replays a copy without it, so that the secret
never sits in this table for 48 hours and a replay does not hand it out again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from referral_saas import prepared
from referral_saas.errors import Conflict, IdempotencyMismatch, ValidationFailed
from referral_saas.tenancy.models import IdempotencyRecord, Merchant

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=48)
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, 1-255 characters


def _fingerprint(request) -> str:
    # request.data raises the parse error (400 malformed_json, 415) for a body the view could not read either.
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + body).hexdigest()


def _lock_id(merchant_id: int, livemode: bool, key: str) -> int:
    digest = hashlib.sha256(f"{merchant_id}:{int(livemode)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _json(value):
    """A jsonb column read through a raw cursor arrives parsed (psycopg2), or as text on other drivers."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _plain(data):
    """Serializer output is already strings, numbers and lists; only DRF's ReturnDict/ReturnList wrappers go."""
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(value) for value in data]
    if data is None or isinstance(data, str | int | float | bool):
        return data
    return json.loads(JSONRenderer().render(data))


def run(request, handler: Callable[[], Response]) -> Response:
    """Run `handler` at most once per key, or replay what it answered."""
    key = request.headers.get(HEADER, "")
    if not _VALID_KEY.match(key):
        raise ValidationFailed(fields={HEADER: ["Must be 1 to 255 visible ASCII characters."]})
    merchant: Merchant = request.merchant
    fingerprint = _fingerprint(request)
    lock_id = _lock_id(merchant.pk, request.livemode, key)
    with transaction.atomic():
        # The first statement takes the lock; the lookup asks for it again (held already: granted again, released
        # with the first at the end of the transaction) to say whether it is held.
        locked, stored_fingerprint, status, body = prepared.execute(
            "rs_idempotency_lookup",
            # The table name comes from the model; every value is a parameter.
            "SELECT taken.held, stored.request_fingerprint, stored.response_status, stored.response_body"  # noqa: S608
            " FROM (SELECT pg_try_advisory_xact_lock($4) AS held) AS taken"
            f" LEFT JOIN {IdempotencyRecord._meta.db_table} AS stored ON taken.held"
            " AND stored.merchant_id = $1 AND stored.livemode = $2 AND stored.key = $3",
            [merchant.pk, request.livemode, key, lock_id],
            before=("SELECT pg_try_advisory_xact_lock(%s)", [lock_id]),
        )
        if not locked:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
                code="idempotency_key_in_use",
            )
        if stored_fingerprint is not None:
            if stored_fingerprint != fingerprint:
                raise IdempotencyMismatch()
            return Response(_json(body), status=status, headers={"Idempotent-Replayed": "true"})
        response = handler()
        if 200 <= response.status_code < 300:
            prepared.insert(
                IdempotencyRecord(
                    merchant=merchant,
                    livemode=request.livemode,
                    key=key,
                    request_fingerprint=fingerprint,
                    method=request.method,
                    path=request.path[:300],
                    response_status=response.status_code,
                    response_body=_plain(getattr(response, "replay_data", response.data)),
                )
            )
        return response


def purge_expired() -> int:
    """Delete records older than KEEP_FOR, merchant by merchant (the index starts with merchant)."""
    cutoff = timezone.now() - KEEP_FOR
    deleted = 0
    for merchant_id in Merchant.objects.values_list("pk", flat=True):
        count, _detail = IdempotencyRecord.all_merchants.filter(merchant_id=merchant_id, created_at__lt=cutoff).delete()
        deleted += count
    return deleted
