"""GA4 `referral_click`: the click happens on our `/r/<code>`, before the visitor reaches the shop, so the shop's `_ga`
cookie (the GA client id) is unknown there. referral.js on the landing page knows both the click id (`rs_click`)
and the `_ga` client id and tells us once (`POST /t/ga`); that queues a referral_click Measurement Protocol event
for the merchant's GA4 connection, sent by the marketing sync like the other GA4 events.

Public and unauthenticated, so it trusts nothing: the click must exist (in PostgreSQL, or still in the click stream)
and belong to the code sent along, be a person's (not a bot's) and recent; each click is queued once per connection
(the sync log's unique key), whatever is posted again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import OutboundSync
from integrations.selectors import marketing_connections_of
from integrations.services.marketing import SYNC_TASK
from programs.models import Program
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import Conflict, NotFound, ValidationFailed
from tracking.clicks import pending_click
from tracking.models import Click
from tracking.selectors import code_info

CLICK_EVENT = "referral.click"
GA_CLIENT_ID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,20}$")  # as the shop API takes it (tracking/api.py)
CLICK_ID = re.compile(r"^[0-9a-f]{32}$")  # uuid4().hex, as /r/<code> appends it
CODE = re.compile(r"^[A-Za-z0-9-]{3,32}$")  # what referral.js keeps of ?ref= (its CODE_RE)
# GA4 takes events up to 72 hours old; the snippet tells us seconds after the landing, or on a later page view.
CLICK_MAX_AGE = timedelta(hours=72)


@dataclass(frozen=True)
class _ClickSeen:
    merchant_id: int
    program_id: int
    code_id: int
    livemode: bool
    is_bot: bool
    occurred_at: datetime
    code: str


def _unknown_click() -> NotFound:
    return NotFound("Unknown click id.", code="unknown_click", fields={"click_id": ["Unknown click id."]})


def _find_click(*, click_id: str, code: str) -> _ClickSeen:
    info = code_info(code)
    if info is None:
        raise _unknown_click()
    # The code names the merchant, so the click is found by (merchant, click_id): the unique index's prefix.
    row = (
        Click.objects.for_merchant(info.merchant_id)
        .filter(click_id=uuid.UUID(click_id))
        .values_list("program_id", "code_id", "livemode", "is_bot", "occurred_at")
        .first()
    )
    if row is not None:
        program_id, code_id, livemode, is_bot, occurred_at = row
        seen = _ClickSeen(info.merchant_id, program_id, code_id, livemode, is_bot, occurred_at, info.code)
    else:
        buffered = pending_click(click_id)  # clicked seconds ago: still in the stream, on its way to PostgreSQL
        if buffered is None or int(buffered["merchant_id"]) != info.merchant_id:
            raise _unknown_click()
        seen = _ClickSeen(
            merchant_id=info.merchant_id,
            program_id=int(buffered["program_id"]),
            code_id=int(buffered["code_id"]),
            livemode=bool(int(buffered["livemode"])),
            is_bot=bool(int(buffered.get("bot") or 0)),
            occurred_at=datetime.fromtimestamp(float(buffered["ts"]), tz=UTC),
            code=info.code,
        )
    if seen.code_id != info.code_id:
        raise _unknown_click()  # a real click id, but of another code: not this visitor's
    return seen


def ga4_click_record(*, click_id: object, code: object, ga_client_id: object) -> bool:
    """Queue a GA4 referral_click for a click the snippet saw land with a GA client id. The click must exist, be the
    code's, a person's and at most 72 hours old; each click is queued once per GA4 connection (the second time:
    Conflict). Returns whether an event was queued (False: the merchant has no GA4 connection of the click's mode)."""
    fields = {}
    if not isinstance(click_id, str) or not CLICK_ID.match(click_id):
        fields["click_id"] = ["A click id: the 32 hex digits of rs_click."]
    if not isinstance(code, str) or not CODE.match(code):
        fields["code"] = ["The referral code the click came with (ref)."]
    if not isinstance(ga_client_id, str) or not GA_CLIENT_ID.match(ga_client_id):
        fields["ga_client_id"] = ["A Google Analytics client id: <digits>.<digits>."]
    if fields:
        raise ValidationFailed(fields=fields)
    click = _find_click(click_id=click_id, code=code)
    if click.is_bot:
        raise _unknown_click()  # never counted anywhere: not sent to GA4 either
    if click.occurred_at < timezone.now() - CLICK_MAX_AGE:
        raise Conflict("This click is too old for Google Analytics (72 hours).", code="click_too_old")
    connections = [
        pk
        for pk, provider, livemode in marketing_connections_of(merchant_id=click.merchant_id)
        if provider == "ga4" and livemode == click.livemode
    ]
    if not connections:
        return False
    program = Program.objects.for_merchant(click.merchant_id).filter(pk=click.program_id).values_list("slug").first()
    now = timezone.now()
    payload = {
        "click_id": click_id,
        "code": click.code,
        "program": program[0] if program else "",
        "ga_client_id": ga_client_id,
        "created_at": click.occurred_at.isoformat(),
    }
    queued = False
    with transaction.atomic():
        for connection_id in connections:
            try:
                with transaction.atomic():  # a savepoint: the click told twice meets outbound_sync_once
                    OutboundSync.objects.for_merchant(click.merchant_id).create(
                        merchant_id=click.merchant_id,
                        connection_id=connection_id,
                        kind=OutboundSync.Kind.EVENT,
                        key=f"{CLICK_EVENT}:{click_id}",
                        event_type=CLICK_EVENT,
                        payload=payload,
                        next_attempt_at=now,
                        created_at=now,
                    )
            except IntegrityError:
                continue
            queued = True
            enqueue_on_commit(SYNC_TASK, merchant_id=click.merchant_id, connection_id=connection_id)
    if not queued:
        raise Conflict("This click was told already.", code="already_recorded")
    return True
