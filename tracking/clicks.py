"""The click hot path and its ingest.

`GET /r/<code>` answers from caches and appends the click to a Redis stream in one round trip (an order naming a
click that has not reached PostgreSQL yet finds it in the stream's newest entries). A Celery task reads
the stream through a consumer group and bulk-inserts into PostgreSQL; it acknowledges entries only after the insert
commits, reclaims entries a dead consumer left pending, and the unique (merchant, click_id) makes a replay harmless.
No click is lost when a worker dies, and no request waits on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError, ResponseError

from referral_saas.devices import request_device_id
from referral_saas.redis_client import get_redis
from tracking.models import Click, ReferralCode
from tracking.selectors import CodeInfo

logger = logging.getLogger(__name__)

STREAM = f"{settings.REDIS_KEY_PREFIX}:clicks"
GROUP = "ingest"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_IP_KEY = hashlib.sha256(b"ip-hash:" + settings.SECRET_KEY.encode()).digest()


def hash_ip(ip: str | None) -> str:
    """A keyed hash: the same IP matches itself across clicks and orders, and cannot be read back."""
    if not ip:
        return ""
    return hmac.new(_IP_KEY, ip.encode(), hashlib.sha256).hexdigest()[:32]


def client_ip(request) -> str:
    """REMOTE_ADDR, or the address NUM_PROXIES hops back in X-Forwarded-For behind trusted proxies."""
    hops = settings.NUM_PROXIES
    if hops:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def landing_location(landing_url: str, params: dict[str, str]) -> str:
    """The landing URL with `params` added; its own query (and fragment) kept, ours winning on a clash."""
    parts = urlsplit(landing_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def click_record(*, info: CodeInfo, request, is_bot: bool) -> str:
    """Buffer one click in Redis; return its id. Raises RedisError when Redis is down (the caller still redirects)."""
    click_id = uuid.uuid4().hex
    utm = {f: request.GET.get(f, "")[:100] for f in UTM_FIELDS if request.GET.get(f)}
    entry = {
        "click_id": click_id,
        "ts": f"{time.time():.6f}",
        "merchant_id": info.merchant_id,
        "program_id": info.program_id,
        "code_id": info.code_id,
        "participant_id": info.participant_id,
        "livemode": int(info.livemode),
        "ip_hash": hash_ip(client_ip(request)),
        "ua": request.headers.get("User-Agent", "")[:512],
        "referer": request.headers.get("Referer", "")[:512],
        "bot": int(is_bot),
        "device_id": request_device_id(request),
        **utm,
    }
    # One field holding compact JSON: encoding two arguments instead of ~25 is most of the Redis call's cost.
    get_redis().execute_command("XADD", STREAM, "*", "d", json.dumps(entry, separators=(",", ":")))
    return click_id


def pending_click(click_id: str, *, max_entries: int = 5_000) -> dict | None:
    """A click still in the buffer (not yet ingested), by id.

    The rare path (an order within seconds of its click): the newest `max_entries` of the backlog are scanned
    (ingest drains the stream every 2 seconds, so these are the last seconds of clicks), instead of writing a
    lookup key per click on the hot path. Bounded, so that orders naming made-up click ids cannot load Redis.
    """
    client = get_redis()
    needle = click_id.encode()
    last = "+"
    try:
        scanned = 0
        while scanned < max_entries:
            batch = client.xrevrange(STREAM, max=last, min="-", count=1000)
            if not batch:
                return None
            for _entry_id, fields in batch:
                if needle in fields.get(b"d", b"") or fields.get(b"click_id") == needle:
                    decoded = _decode(fields)
                    if decoded["click_id"] == click_id:
                        return decoded
            scanned += len(batch)
            if len(batch) < 1000:
                return None
            last = "(" + batch[-1][0].decode()
    except RedisError:
        return None
    return None


# --- ingest -----------------------------------------------------------------------------------------------------


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _ensure_group(client) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _decode(fields: dict) -> dict:
    """A stream entry as a dict of strings (entries carry one JSON field `d`; older ones one field per value)."""
    if b"d" in fields:
        return {key: str(value) for key, value in json.loads(fields[b"d"]).items()}
    return {k.decode(): v.decode() for k, v in fields.items()}


def _row(d: dict) -> Click:
    return Click(
        merchant_id=int(d["merchant_id"]),
        livemode=d["livemode"] == "1",
        click_id=uuid.UUID(d["click_id"]),
        occurred_at=datetime.fromtimestamp(float(d["ts"]), tz=UTC),
        program_id=int(d["program_id"]),
        code_id=int(d["code_id"]),
        participant_id=int(d["participant_id"]),
        ip_hash=d.get("ip_hash", ""),
        user_agent=d.get("ua", ""),
        referer=d.get("referer", ""),
        is_bot=d.get("bot") == "1",
        device_id=d.get("device_id", "")[:128],  # entries buffered before clicks carried it have none
        **{f: d.get(f, "") for f in UTM_FIELDS},
    )


def _rows(entries: list[tuple[bytes, dict]]) -> list[Click]:
    decoded = [_decode(fields) for _id, fields in entries if fields]
    # A code deleted since the click (its program was deleted) would fail the whole batch on its foreign key.
    code_ids = {int(d["code_id"]) for d in decoded}
    existing = set(ReferralCode.all_merchants.filter(pk__in=code_ids).values_list("pk", flat=True))
    rows = []
    for d in decoded:
        if int(d["code_id"]) not in existing:
            logger.warning("dropping a click of a deleted code", extra={"click_id": d["click_id"]})
            continue
        rows.append(_row(d))
    return rows


def click_ingest_early(buffered: dict) -> None:
    """Write one click that is still in the buffer now (an order or sign-up names it seconds after it happened), so
    the order links to it and fraud scoring sees its IP, browser, device and time. The ingest's later insert of the
    same click is a no-op (unique merchant + click id). Runs in the caller's transaction."""
    if ReferralCode.all_merchants.filter(pk=int(buffered["code_id"])).exists():
        Click.all_merchants.bulk_create([_row(buffered)], ignore_conflicts=True)


def clicks_ingest(
    *, consumer: str | None = None, batch_size: int = 1000, reclaim_idle_ms: int = 30_000, max_seconds: float = 20.0
) -> int:
    """Move buffered clicks into PostgreSQL until the stream is drained or `max_seconds` pass; return how many.

    Entries another consumer read but never acknowledged for `reclaim_idle_ms` (it died) are claimed first.
    """
    client = get_redis()
    consumer = consumer or consumer_name()
    _ensure_group(client)
    started, ingested = time.monotonic(), 0
    while time.monotonic() - started < max_seconds:
        _next, entries, *_deleted = client.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=reclaim_idle_ms, start_id="0-0", count=batch_size
        )
        if not entries:
            response = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch_size)
            entries = response[0][1] if response else []
        if not entries:
            break
        rows = _rows(entries)
        with transaction.atomic():
            Click.all_merchants.bulk_create(rows, ignore_conflicts=True, batch_size=batch_size)
        ids = [entry_id for entry_id, _fields in entries]
        pipe = client.pipeline(transaction=False)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        ingested += len(rows)
    return ingested


def stream_backlog() -> int:
    """Clicks buffered and not yet acknowledged (for health and benchmarks)."""
    client = get_redis()
    try:
        return int(client.xlen(STREAM))
    except ResponseError:
        return 0
