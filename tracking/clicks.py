"""The click hot path and its ingest.

`GET /r/<code>` answers from caches and appends the click to a Redis stream in one round trip (an order naming a
click that has not reached PostgreSQL yet finds it in the stream's newest entries). A Celery task reads
the stream through a consumer group and bulk-inserts into PostgreSQL; it acknowledges entries only after the insert
commits, reclaims entries a dead consumer left pending, and the unique (merchant, click_id) makes a replay harmless.
No click is lost when a worker dies, and no request waits on PostgreSQL.

Everything a click carries from the request (utm parameters, User-Agent, Referer) is cleaned of control characters
before it is buffered: PostgreSQL refuses a NUL in text, and one such value used to fail its whole batch, forever.
The ingest trusts nothing it reads either: an entry it cannot store (bad JSON, a missing or malformed id, an unknown
code, a value the database refuses) is moved to the dead-letter stream `DEAD_STREAM` with the reason, and the rest
of its batch is stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
import os
import re
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from referral_saas.devices import request_device_id
from referral_saas.redis_client import get_redis, guarded, note_redis_failure
from tracking.models import Click, ReferralCode
from tracking.selectors import CodeInfo

logger = logging.getLogger(__name__)

STREAM = f"{settings.REDIS_KEY_PREFIX}:clicks"
# Entries the ingest could not store, with the reason (see `manage.py clickdeadletters`); the newest ~10,000 kept.
DEAD_STREAM = f"{STREAM}:dead"
DEAD_MAXLEN = 10_000
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


# Control characters: whitespace-like ones (tab, line breaks, U+0085, U+2028/9) become a space, the others (NUL and
# the rest of C0, DEL, C1) are dropped, and so are lone surrogates (a JSON \ud800 escape PostgreSQL cannot encode).
_CONTROL_SPACE = re.compile("[\t\n\v\f\r\x85\u2028\u2029]+")
_CONTROL_DROP = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str, max_length: int) -> str:
    """A click's text field as it may be stored and passed on: no control characters, at most `max_length` long."""
    return _CONTROL_DROP.sub("", _CONTROL_SPACE.sub(" ", value)).strip()[:max_length]


def landing_location(landing_url: str, params: dict[str, str]) -> str:
    """The landing URL with `params` added; its own query (and fragment) kept, ours winning on a clash."""
    parts = urlsplit(landing_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def utm_params(request) -> dict[str, str]:
    """The request's utm_* parameters, cleaned (they are stored with the click and passed on to the landing page)."""
    if not request.META.get("QUERY_STRING"):
        return {}  # most clicks: no query to parse
    query = request.GET
    cleaned = {field: clean_text(query[field], 100) for field in UTM_FIELDS if field in query}
    return {field: value for field, value in cleaned.items() if value}


class RecordedClick:
    """A click on its way to the Redis stream: its id, and `confirm()`, which reads Redis's answer.

    The redirect is sent before that answer is read (the round trip is not the visitor's wait). An error or no answer
    within the socket timeout: the same process then writes the click to PostgreSQL, so its id, already in the
    visitor's URL, still names it. A process killed in between loses nothing either: the command is already in
    Redis's hands.
    """

    __slots__ = ("_connection", "_entry", "_pool", "click_id")

    def __init__(self, click_id: str, entry: dict, pool=None, connection=None):
        self.click_id = click_id
        self._entry = entry
        self._pool = pool
        self._connection = connection

    def confirm(self) -> None:
        """Read Redis's answer to the XADD (once); store the click in PostgreSQL if Redis did not take it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.read_response()  # not skipped when the breaker opened meanwhile: the command was sent
        except RedisError as exc:
            if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                note_redis_failure(exc)
            connection.disconnect()  # what is left on it, if anything, belongs to no one
            _store_instead(self._entry)
        finally:
            self._pool.release(connection)


def _xadd_send(pool, data: str):
    """Send the XADD on a connection of the pool, without waiting for the answer; the connection, still taken."""
    connection = pool.get_connection()
    try:
        connection.send_command("XADD", STREAM, "*", "d", data)
    except BaseException:
        connection.disconnect()
        pool.release(connection)
        raise
    return connection


def _store_instead(entry: dict) -> bool:
    """The click Redis did not take, written to PostgreSQL (if Redis took it after all, the ingest's insert of the
    same click id is a no-op). False when PostgreSQL failed too: that click is lost, and logged."""
    logger.warning("click buffer unavailable, storing the click in PostgreSQL", extra={"click_id": entry["click_id"]})
    try:
        click_ingest_early(entry)
    except DatabaseError:
        logger.exception("click lost: neither Redis nor PostgreSQL took it", extra={"click_id": entry["click_id"]})
        return False
    return True


def click_record(*, info: CodeInfo, request, is_bot: bool, utm: dict[str, str]) -> RecordedClick | None:
    """Send one click (`utm`: the visit's utm_params) to the Redis stream; None when it could not be recorded.

    The caller answers, then calls `confirm()` (RecordedClick). When Redis fails at once (down, refusing, or the
    breaker skipping it for a few seconds after a failure) the click is written straight to PostgreSQL instead; only
    when PostgreSQL fails too is it lost (logged), and the caller still redirects, with the code.
    """
    click_id = uuid.uuid4().hex
    entry = {
        "click_id": click_id,
        "ts": f"{time.time():.6f}",
        "merchant_id": info.merchant_id,
        "program_id": info.program_id,
        "code_id": info.code_id,
        "participant_id": info.participant_id,
        "livemode": int(info.livemode),
        "ip_hash": hash_ip(client_ip(request)),
        "ua": clean_text(request.headers.get("User-Agent", ""), 512),
        "referer": clean_text(request.headers.get("Referer", ""), 512),
        "bot": int(is_bot),
        "device_id": request_device_id(request),
        **utm,
    }
    # One field holding compact JSON: encoding two arguments instead of ~25 is most of the Redis call's cost.
    data = json.dumps(entry, separators=(",", ":"))
    pool = get_redis().connection_pool
    try:
        connection = guarded(_xadd_send, pool, data)
    except RedisError:
        return RecordedClick(click_id, entry) if _store_instead(entry) else None
    return RecordedClick(click_id, entry, pool, connection)


def pending_click(click_id: str, *, max_entries: int = 5_000) -> dict | None:
    """A click still in the buffer (not yet ingested), by id, checked and cleaned as the ingest would store it.

    The rare path (an order within seconds of its click): the newest `max_entries` of the backlog are scanned
    (ingest drains the stream every 2 seconds, so these are the last seconds of clicks), instead of writing a
    lookup key per click on the hot path. Bounded, so that orders naming made-up click ids cannot load Redis.
    An entry the ingest could not store either is not found (the ingest moves it to the dead letters).
    """
    client = get_redis()
    needle = click_id.encode()
    last = "+"
    try:
        scanned = 0
        while scanned < max_entries:
            batch = guarded(client.xrevrange, STREAM, max=last, min="-", count=1000)
            if not batch:
                return None
            for _entry_id, fields in batch:
                if needle in fields.get(b"d", b"") or fields.get(b"click_id") == needle:
                    try:
                        decoded = _decode(fields)
                    except BadClick:
                        continue
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


class BadClick(ValueError):
    """A buffered entry that cannot become a Click; its message is the reason kept with the dead letter."""


_ID_FIELDS = ("merchant_id", "program_id", "code_id", "participant_id")
_TEXT_FIELDS = {"ip_hash": 32, "ua": 512, "referer": 512, "device_id": 128, **dict.fromkeys(UTM_FIELDS, 100)}
_FLAGS = {"1": True, "true": True, "0": False, "false": False}
_EARLIEST_TS = 946_684_800.0  # 2000-01-01: no click is older
_MAX_ID = 2**63 - 1  # bigint
# What PostgreSQL (or psycopg2, for a NUL) refuses about one row's values. A lost connection is not among them: the
# batch then stays pending and is retried, instead of being dead-lettered.
_ROW_ERRORS = (DataError, IntegrityError, ValueError)


def _scalar(d: dict, name: str, *, required: bool = True) -> str | None:
    value = d.get(name)
    if value is None:
        if required:
            raise BadClick(f"missing {name}")
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, str | int | float):
        raise BadClick(f"{name} is a {type(value).__name__}, not a value")
    return str(value)


def _id(d: dict, name: str) -> int:
    text = _scalar(d, name)
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= _MAX_ID):
        raise BadClick(f"{name} is not an id: {text[:40]!r}")
    return int(text)


def _flag(d: dict, name: str, *, required: bool) -> bool:
    text = _scalar(d, name, required=required)
    if text is None:
        return False
    if text.lower() not in _FLAGS:
        raise BadClick(f"{name} is not 0 or 1: {text[:40]!r}")
    return _FLAGS[text.lower()]


def _timestamp(d: dict) -> float:
    text = _scalar(d, "ts")
    try:
        ts = float(text)
    except ValueError:
        raise BadClick(f"ts is not a number: {text[:40]!r}") from None
    if not (math.isfinite(ts) and _EARLIEST_TS <= ts <= time.time() + 86_400):
        raise BadClick(f"ts out of range: {text[:40]!r}")
    return ts


def _validated(raw) -> dict[str, str]:
    """An entry's values checked and in one form (ids as digits, flags as "1"/"0", text cleaned and cut to the
    column's length), or BadClick saying what is wrong. Idempotent."""
    if not isinstance(raw, dict):
        raise BadClick(f"the entry is a {type(raw).__name__}, not an object")
    click_id = _scalar(raw, "click_id")
    try:
        click_uuid = uuid.UUID(click_id)
    except ValueError:
        raise BadClick(f"click_id is not a uuid: {click_id[:40]!r}") from None
    clean = {"click_id": click_uuid.hex, "ts": f"{_timestamp(raw):.6f}"}
    clean.update({name: str(_id(raw, name)) for name in _ID_FIELDS})
    clean["livemode"] = "1" if _flag(raw, "livemode", required=True) else "0"
    clean["bot"] = "1" if _flag(raw, "bot", required=False) else "0"
    for name, max_length in _TEXT_FIELDS.items():
        # Entries buffered before the redirect cleaned its values (or before clicks carried a device id) are
        # cleaned (or given "") here.
        clean[name] = clean_text(_scalar(raw, name, required=False) or "", max_length)
    return clean


def _decode(fields: dict) -> dict[str, str]:
    """A stream entry, checked and cleaned (entries carry one JSON field `d`; older ones one field per value)."""
    if b"d" in fields:
        try:
            raw = json.loads(fields[b"d"], strict=False)  # strict=False: a raw control character is cleaned later
        except (ValueError, RecursionError) as exc:
            raise BadClick(f"not JSON: {exc}"[:200]) from None
    else:
        try:
            raw = {key.decode(): value.decode() for key, value in fields.items()}
        except UnicodeDecodeError:
            raise BadClick("not UTF-8") from None
    return _validated(raw)


def _row(d: dict) -> Click:
    return _clean_row(_validated(d))


def _clean_row(d: dict[str, str]) -> Click:
    """A Click from an entry `_validated` already checked and cleaned (the ingest's path: validated once)."""
    return Click(
        merchant_id=int(d["merchant_id"]),
        livemode=d["livemode"] == "1",
        click_id=uuid.UUID(d["click_id"]),
        occurred_at=datetime.fromtimestamp(float(d["ts"]), tz=UTC),
        program_id=int(d["program_id"]),
        code_id=int(d["code_id"]),
        participant_id=int(d["participant_id"]),
        ip_hash=d["ip_hash"],
        user_agent=d["ua"],
        referer=d["referer"],
        is_bot=d["bot"] == "1",
        device_id=d["device_id"],
        **{f: d[f] for f in UTM_FIELDS},
    )


def _owners(rows: list[Click]) -> dict[int, tuple[int, int, int]]:
    """(merchant, program, participant) of each code the rows name that still exists."""
    found = ReferralCode.all_merchants.filter(pk__in={row.code_id for row in rows})
    return {pk: owner for pk, *owner in found.values_list("pk", "merchant_id", "program_id", "participant_id")}


def _unstorable(row: Click, owners: dict[int, tuple[int, int, int]]) -> str | None:
    owner = owners.get(row.code_id)
    if owner is None:
        # Deleted since the click (with its program), or never existed: its foreign key would fail the batch.
        return f"unknown code {row.code_id}"
    if tuple(owner) != (row.merchant_id, row.program_id, row.participant_id):
        return f"merchant, program or participant is not code {row.code_id}'s"
    return None


def _rows(entries: list[tuple[bytes, dict]]) -> tuple[list[tuple[bytes, dict, Click]], list[tuple[bytes, dict, str]]]:
    """The batch's entries as (id, fields, Click) to store, and (id, fields, reason) for those that cannot be."""
    candidates, dead = [], []
    for entry_id, fields in entries:
        if not fields:
            continue  # deleted meanwhile: only acknowledged
        try:
            candidates.append((entry_id, fields, _clean_row(_decode(fields))))
        except BadClick as exc:
            dead.append((entry_id, fields, str(exc)))
    owners = _owners([row for _id, _fields, row in candidates])
    rows = []
    for entry_id, fields, row in candidates:
        reason = _unstorable(row, owners)
        if reason:
            dead.append((entry_id, fields, reason))
        else:
            rows.append((entry_id, fields, row))
    return rows, dead


@functools.cache
def _insert_sql() -> str:
    """One INSERT for a whole batch: a typed array per column, unnested (Django's bulk_create compiles and adapts
    every value of every row in Python, which was most of the ingest's time)."""
    columns = ", ".join(field.column for field in _COLUMNS)
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in _COLUMNS)
    table = Click._meta.db_table
    return f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"  # noqa: S608


_COLUMNS = [field for field in Click._meta.concrete_fields if not field.primary_key]


def _column_values(rows: list[Click]) -> list[list]:
    values = []
    for field in _COLUMNS:
        column = [getattr(row, field.attname) for row in rows]
        if field.get_internal_type() == "UUIDField":
            column = [str(value) for value in column]
        values.append(column)
    return values


def _store(rows: list[Click], *, batch_size: int = 1000) -> None:
    """Insert in a savepoint, a replayed click ignored (unique merchant + click id + time: a replay repeats all
    three). Foreign keys are checked by the INSERT, not at COMMIT as Django declares them: a click naming a row
    deleted a moment ago then fails here, alone, instead of failing the commit of its whole batch (or of the order
    that stores it early)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for start in range(0, len(rows), batch_size):
            cursor.execute(_insert_sql(), _column_values(rows[start : start + batch_size]))
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as it was (a failure rolls the savepoint back to it)


def _insert(rows: list[tuple[bytes, dict, Click]], *, batch_size: int) -> list[tuple[bytes, dict, str]]:
    """Store the rows in one statement; if PostgreSQL refuses it for a value nobody foresaw, one by one (each in its
    own savepoint), so that only the rows it refuses are left out. Returns those, with the reason."""
    try:
        _store([row for *_entry, row in rows], batch_size=batch_size)
        return []
    except _ROW_ERRORS as exc:
        logger.warning("a click batch was refused, storing its clicks one by one", extra={"error": str(exc)[:300]})
    refused = []
    with transaction.atomic():
        for entry_id, fields, row in rows:
            try:
                _store([row])
            except _ROW_ERRORS as exc:
                refused.append((entry_id, fields, f"refused by the database: {type(exc).__name__}: {exc}"[:300]))
    return refused


def _dead_letter(pipe, dead: list[tuple[bytes, dict, str]]) -> None:
    for entry_id, fields, reason in dead:
        if b"d" in fields:
            data = fields[b"d"]
        else:
            data = json.dumps(
                {k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace") for k, v in fields.items()}
            )
        logger.warning("click entry dead-lettered", extra={"entry_id": entry_id.decode(), "reason": reason})
        fields_out = {"reason": reason, "source_id": entry_id, "d": data}
        pipe.xadd(DEAD_STREAM, fields_out, maxlen=DEAD_MAXLEN, approximate=True)


def click_ingest_early(buffered: dict) -> None:
    """Write one click that is still in the buffer now (an order or sign-up names it seconds after it happened), so
    the order links to it and fraud scoring sees its IP, browser, device and time. The ingest's later insert of the
    same click is a no-op (unique merchant + click id). Runs in the caller's transaction, in a savepoint: a click that
    cannot be stored is left to the ingest (which dead-letters it), and the order goes on without it."""
    try:
        row = _row(buffered)
    except BadClick as exc:
        logger.warning("buffered click not stored early", extra={"reason": str(exc)})
        return
    reason = _unstorable(row, _owners([row]))
    if reason:
        logger.warning("buffered click not stored early", extra={"reason": reason})
        return
    try:
        _store([row])
    except _ROW_ERRORS as exc:
        logger.warning("buffered click not stored early", extra={"reason": f"{type(exc).__name__}: {exc}"[:300]})


def clicks_ingest(
    *, consumer: str | None = None, batch_size: int = 1000, reclaim_idle_ms: int = 30_000, max_seconds: float = 20.0
) -> int:
    """Move buffered clicks into PostgreSQL until the stream is drained or `max_seconds` pass; return how many.

    Entries another consumer read but never acknowledged for `reclaim_idle_ms` (it died) are claimed first. An entry
    that cannot be stored goes to DEAD_STREAM with the reason; it never holds back the rest of its batch.
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
        rows, dead = _rows(entries)
        refused = _insert(rows, batch_size=batch_size) if rows else []
        ids = [entry_id for entry_id, _fields in entries]
        pipe = client.pipeline(transaction=False)
        _dead_letter(pipe, dead + refused)  # kept before they leave the stream (a crash here repeats, never loses)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        ingested += len(rows) - len(refused)
    return ingested


# --- dead letters (for operators: /readyz counts them, `manage.py clickdeadletters` lists them) -----------------


def dead_letter_count() -> int:
    try:
        return int(get_redis().xlen(DEAD_STREAM))
    except ResponseError:
        return 0


def dead_letters(*, count: int = 50) -> list[dict[str, str]]:
    """The newest dead-lettered entries: when, why, and what the entry held."""
    letters = []
    for dead_id, fields in get_redis().xrevrange(DEAD_STREAM, count=count):
        text = {k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace") for k, v in fields.items()}
        seconds = int(dead_id.decode().split("-", 1)[0]) / 1000
        letters.append(
            {
                "id": dead_id.decode(),
                "dead_at": datetime.fromtimestamp(seconds, tz=UTC).isoformat(),
                "source_id": text.get("source_id", ""),
                "reason": text.get("reason", ""),
                "data": text.get("d", ""),
            }
        )
    return letters


def dead_letters_clear() -> int:
    """Drop every dead letter (after reading them); returns how many there were."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(DEAD_STREAM)
    pipe.delete(DEAD_STREAM)
    count, _deleted = pipe.execute()
    return int(count)


def stream_backlog() -> int:
    """Clicks buffered and not yet acknowledged (for health and benchmarks)."""
    client = get_redis()
    try:
        return int(client.xlen(STREAM))
    except ResponseError:
        return 0
