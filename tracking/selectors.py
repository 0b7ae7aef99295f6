"""Reads for tracking, including the cached code lookup the click redirect lives on.

The redirect resolves a code without touching PostgreSQL or Redis: an in-process cache (LINK_TTL) in front of the
Redis cache (REDIS_TTL) in front of the database. Writes that change what a link does (code disabled, participant
blocked, program paused or edited) delete the Redis entry and bump a version number in Redis; each process reads
that number at most once every VERSION_CHECK_SECONDS and drops its in-process entries when it moved. A change thus
reaches every process within about a second, while a click costs no cache round trip at all.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError

from programs.identity import normalize_code
from programs.models import Invite, Participant, Program, ProgramVariant, ShareEvent
from referral_saas import prepared
from referral_saas.redis_client import get_redis, guarded
from tracking.models import Click, CodeRoute, Conversion, Referral, ReferralCode

LOCAL_TTL = 10.0
# The redirect's entries live longer in-process: the version check below drops them as soon as a link changes (and
# LINK_TTL bounds them when Redis is unreachable and the check cannot run).
LINK_TTL = 60.0
VERSION_CHECK_SECONDS = 1.0
LINKS_VERSION_KEY = f"{settings.REDIS_KEY_PREFIX}:links:version"
REDIS_TTL = 300
_MISSING = "missing"


@dataclass(frozen=True)
class CodeInfo:
    code_id: int
    code: str
    merchant_id: int
    program_id: int
    participant_id: int
    livemode: bool
    usable: bool  # code_unusable_reason says nothing (the program's state is ProgramInfo's)


@dataclass(frozen=True)
class ProgramInfo:
    program_id: int
    landing_url: str
    live: bool  # active and inside its dates today
    checked_at: float
    # Where a working link sends the friend first when the program welcomes them on a page of ours (the portal's
    # welcome page, which then sends them on to landing_url); "" = straight to landing_url.
    welcome_path: str = ""


class _LocalCache:
    """A tiny thread-safe TTL dict: each gunicorn worker keeps its hot codes in memory."""

    def __init__(self, maxsize: int = 50_000):
        self._data: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._maxsize = maxsize
        self.links_version: bytes | None = None  # LINKS_VERSION_KEY as last read
        self.links_checked_at = float("-inf")

    def get(self, key: str):
        item = self._data.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def set(self, key: str, value, ttl: float = LOCAL_TTL) -> None:
        with self._lock:
            if len(self._data) >= self._maxsize:
                self._data.clear()
            self._data[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_cache = _LocalCache()


def link_for(code: ReferralCode | str) -> str:
    """The code's shareable link (the /r/<code> redirect)."""
    return f"{settings.SITE_URL}/r/{code}"


def _code_key(normalized: str) -> str:
    return f"code:{normalized}"


def _program_key(program_id: int) -> str:
    return f"program:{program_id}"


def _links_version_check() -> None:
    """Drop this process's cached entries when a link changed since the last look (at most one look a second)."""
    now = time.monotonic()
    if now - local_cache.links_checked_at < VERSION_CHECK_SECONDS:
        return
    local_cache.links_checked_at = now
    try:
        version = guarded(get_redis().get, LINKS_VERSION_KEY)
    except RedisError:
        return  # entries then expire within LINK_TTL
    if version != local_cache.links_version:
        local_cache.clear()
        local_cache.links_version = version


def _links_changed() -> None:
    # When Redis cannot take it, other processes drop their copies within LINK_TTL instead.
    with contextlib.suppress(RedisError):
        guarded(get_redis().incr, LINKS_VERSION_KEY)


def code_info(code: str) -> CodeInfo | None:
    """What `/r/<code>` points at, or None for an unknown code."""
    normalized = normalize_code(code)
    if not normalized or len(normalized) > 32:
        return None
    _links_version_check()
    key = _code_key(normalized)
    hit = local_cache.get(key)
    if hit is None:
        raw = cache.get(key)
        if raw is None:
            info = _code_info_from_db(normalized)
            raw = asdict(info) if info else _MISSING
            cache.set(key, raw, REDIS_TTL)
        hit = CodeInfo(**raw) if raw != _MISSING else _MISSING
        local_cache.set(key, hit, LINK_TTL)
    return None if hit == _MISSING else hit


def _code_info_from_db(normalized: str) -> CodeInfo | None:
    # The route table is global by design (the URL names no merchant); the code row is then read in its tenant.
    route = CodeRoute.objects.filter(code_normalized=normalized).values_list("merchant_id", "referral_code_id").first()
    if route is None:
        return None
    merchant_id, code_id = route
    row = (
        ReferralCode.all_merchants.filter(merchant_id=merchant_id, pk=code_id)
        .values("code", "program_id", "participant_id", "livemode", "status", "participant__status")
        .first()
    )
    if row is None:
        return None
    return CodeInfo(
        code_id=code_id,
        code=row["code"],
        merchant_id=merchant_id,
        program_id=row["program_id"],
        participant_id=row["participant_id"],
        livemode=row["livemode"],
        usable=code_unusable_reason(code_status=row["status"], referrer_status=row["participant__status"]) is None,
    )


def program_info(program_id: int) -> ProgramInfo | None:
    key = _program_key(program_id)
    hit = local_cache.get(key)
    if hit is None:
        raw = cache.get(key)
        if raw is None:
            program = Program.all_merchants.select_related("merchant").filter(pk=program_id).first()
            if program is None:
                return None
            welcome = f"/p/{program.merchant.slug}/{program.slug}/welcome/" if program.friend_welcome_page else ""
            raw = asdict(ProgramInfo(program.pk, program.landing_url, program.is_live(), time.time(), welcome))
            # Re-check at least hourly so that start and end dates take effect without an edit.
            cache.set(key, raw, REDIS_TTL)
        hit = ProgramInfo(**raw)
        local_cache.set(key, hit, LINK_TTL)
    return hit


def code_cache_invalidate(*, code_normalized: str) -> None:
    cache.delete(_code_key(code_normalized))
    local_cache.clear()
    _links_changed()


def program_cache_invalidate(*, program_id: int) -> None:
    cache.delete(_program_key(program_id))
    local_cache.clear()
    _links_changed()


def participant_codes_cache_invalidate(*, participant: Participant) -> None:
    keys = [
        _code_key(n)
        for n in ReferralCode.objects.for_merchant(participant.merchant)
        .filter(participant=participant)
        .values_list("code_normalized", flat=True)
    ]
    if keys:
        cache.delete_many(keys)
    local_cache.clear()
    _links_changed()


def code_lookup(*, merchant, livemode: bool, code: str) -> ReferralCode | None:
    """A code of this merchant (and mode), as typed by a customer, with its program and participant.

    Found codes are kept in this process for LOCAL_TTL seconds (orders name the same codes again and again);
    changes made here drop the entry at once, changes made by other processes are seen within LOCAL_TTL.
    """
    normalized = normalize_code(code)
    key = f"code-row:{merchant.pk}:{int(livemode)}:{normalized}"
    row = local_cache.get(key)
    if row is None:
        row = next(
            iter(
                ReferralCode.objects.for_merchant(merchant)
                .select_related("program", "participant", "variant")
                .filter(code_normalized=normalized, livemode=livemode)[:1]
            ),
            None,
        )
        if row is None:
            return None
        row.program.merchant = merchant  # the caller's merchant: no join, and no stale copy of it in the cache
        local_cache.set(key, row)
    return row


def code_unusable_reason(*, code_status: str, referrer_status: str) -> str | None:
    """Why a code cannot bring a friend, whatever its program does: "code_disabled", "referrer_blocked" (blocked or
    erased), else None. The redirect (CodeInfo.usable) and code_check both ask this."""
    if code_status != ReferralCode.Status.ACTIVE:
        return "code_disabled"
    if referrer_status != Participant.Status.ACTIVE:
        return "referrer_blocked"
    return None


@dataclass(frozen=True)
class CodeCheck:
    code: ReferralCode
    valid: bool
    reason: str | None  # code_disabled, referrer_blocked, program_inactive; None when valid
    program: Program
    referrer: Participant


def code_check(*, merchant, code: str, livemode: bool = True) -> CodeCheck | None:
    """A code as a customer would use it, or None when this merchant (in this mode) has no such code.

    Valid when the code is usable (code_unusable_reason) and its program is running today. What it offers is
    rewards.offers.offers_for its variant: the shop API's code check and the portal show the same offer.
    """
    row = code_lookup(merchant=merchant, livemode=livemode, code=code)
    if row is None:
        return None
    reason = code_unusable_reason(code_status=row.status, referrer_status=row.participant.status)
    if reason is None and not row.program.is_live():
        reason = "program_inactive"
    return CodeCheck(code=row, valid=reason is None, reason=reason, program=row.program, referrer=row.participant)


def conversion_list(*, merchant, livemode: bool):
    """A merchant's orders in one mode, with what the API shows of each (program, referral, referrer, code)."""
    return (
        Conversion.objects.for_merchant(merchant)
        .filter(livemode=livemode)
        .select_related("program", "referral__referrer", "referral__code")
    )


def participant_stats(*, participant: Participant, program: Program) -> dict:
    """The referrer's own numbers for the portal: clicks, friends signed up, purchases."""
    scope = {"merchant": participant.merchant_id, "program": program}
    clicks = Click.all_merchants.filter(**scope, participant=participant, is_bot=False).count()
    referrals = Referral.all_merchants.filter(**scope, referrer=participant).exclude(status=Referral.Status.REJECTED)
    purchases = Conversion.all_merchants.filter(
        merchant=participant.merchant_id, referral__referrer=participant, program=program, status="attributed"
    ).count()
    return {"clicks": clicks, "signups": referrals.count(), "purchases": purchases}


# The typed code's row with what attribution reads of it: the code, its program, its referrer and its A/B variant,
# each model's concrete columns in field order (rebuilt into instances by _code_row).
_CODE_MODELS = (
    ("c", ReferralCode),
    ("p", Program),
    ("pa", Participant),
    ("v", ProgramVariant),
)


@functools.cache
def _facts_sql() -> str:
    """_FACTS_SQL with the code columns spelled out (built once: the models' fields do not change at run time)."""
    code_columns = ", ".join(
        f'{alias}."{field.column}" AS "{alias}_{field.column}"'
        for alias, model in _CODE_MODELS
        for field in model._meta.concrete_fields
    )
    return _FACTS_SQL.format(code_columns=code_columns)


# $1 merchant, $2 livemode, $3 order id, $4 customer external id, $5 normalised email, $6 program (or NULL),
# $7 the order's time, $8 the normalised code the shop sent (or NULL). NULL parameters match nothing. Without $6 the
# code's program scopes the friend's referral. The friend's referral: a live one first, else a rejected one (a friend
# rejected once stays rejected; the unique constraints keep one per program). Every join names merchant_id too, so
# the statement stays one shard's on a schema distributed by merchant.
_FACTS_SQL = """
    WITH code AS (
      SELECT {code_columns}
      FROM tracking_referralcode c
        JOIN programs_program p ON p.merchant_id = c.merchant_id AND p.id = c.program_id
        JOIN programs_participant pa ON pa.merchant_id = c.merchant_id AND pa.id = c.participant_id
        LEFT JOIN programs_programvariant v ON v.merchant_id = c.merchant_id AND v.id = c.variant_id
      WHERE c.merchant_id = $1 AND c.livemode = $2 AND c.code_normalized = $8
    ), scope AS (
      SELECT COALESCE($6::bigint, (SELECT c_program_id FROM code)) AS program_id
    )
    SELECT
      (SELECT id FROM tracking_conversion WHERE merchant_id = $1 AND livemode = $2 AND order_id = $3),
      EXISTS (SELECT 1 FROM tracking_conversion WHERE merchant_id = $1 AND livemode = $2
                AND customer_external_id = $4 AND occurred_at < $7)
        OR EXISTS (SELECT 1 FROM tracking_conversion WHERE merchant_id = $1 AND livemode = $2
                AND customer_email_normalized = $5 AND occurred_at < $7),
      (SELECT id FROM (
          (SELECT id, status = 'rejected' AS rejected, created_at FROM tracking_referral
             WHERE merchant_id = $1 AND livemode = $2 AND referee_external_id = $4
               AND (scope.program_id IS NULL OR program_id = scope.program_id)
             ORDER BY status = 'rejected', created_at LIMIT 1)
          UNION ALL
          (SELECT id, status = 'rejected' AS rejected, created_at FROM tracking_referral
             WHERE merchant_id = $1 AND livemode = $2 AND referee_email_normalized = $5
               AND (scope.program_id IS NULL OR program_id = scope.program_id)
             ORDER BY status = 'rejected', created_at LIMIT 1)
        ) AS r ORDER BY rejected, created_at LIMIT 1),
      COALESCE(
        (SELECT id FROM programs_participant WHERE merchant_id = $1 AND livemode = $2 AND external_id = $4),
        (SELECT id FROM programs_participant WHERE merchant_id = $1 AND livemode = $2 AND email_normalized = $5)
      ),
      code.*
    FROM scope LEFT JOIN code ON true
"""


@dataclass(frozen=True)
class AttributionFacts:
    existing_order_id: int | None
    returning_customer: bool
    referral_id: int | None
    referee_participant_id: int | None
    code: ReferralCode | None = None  # the code the shop sent, with its program, referrer and variant; None: unknown


@functools.cache
def _code_layout() -> list[tuple[str, type, list[str], list[tuple[int, object, object]]]]:
    """Per model of _CODE_MODELS: its alias, class, attnames, and the (index, converter, field) its values need."""
    layout = []
    for alias, model in _CODE_MODELS:
        fields = model._meta.concrete_fields
        converters = [(i, c, f) for i, f in enumerate(fields) for c in f.get_db_converters(connection)]
        layout.append((alias, model, [f.attname for f in fields], converters))
    return layout


def _code_row(merchant, values: tuple) -> ReferralCode | None:
    """Model instances from the code columns of the facts row (None when the code is unknown or none was sent)."""
    if values[0] is None:
        return None
    instances, at = {}, 0
    for alias, model, attnames, converters in _code_layout():
        row = list(values[at : at + len(attnames)])
        at += len(attnames)
        if row[0] is None:  # a code without an A/B variant
            instances[alias] = None
            continue
        for i, converter, field in converters:
            row[i] = converter(row[i], field, connection)
        instances[alias] = model.from_db(connection.alias, attnames, row)
    code, program = instances["c"], instances["p"]
    program.merchant = merchant  # the caller's merchant: no join
    code.program, code.participant, code.variant = program, instances["pa"], instances["v"]
    return code


def attribution_facts(
    *,
    merchant,
    livemode: bool,
    order_id: str,
    external_id: str | None,
    email_normalized: str | None,
    program_id: int | None,
    before,
    code: str | None = None,
) -> AttributionFacts:
    """What attribution needs to know about an order's customer and the code it names, in one round trip.

    Each lookup is an EXISTS / LIMIT 1 subquery on one column, so PostgreSQL uses the composite index that starts
    with (merchant, livemode, <column>) whatever its statistics say; an `a = x OR b = y` filter would invite it to
    scan all of a merchant's orders. The statement is prepared once per connection: planning it took longer than
    running it. The code is read from the database on every order (no cache): a code disabled, a referrer blocked or
    a program paused a moment ago applies to the next order, and a merchant with thousands of referrers costs no more
    than one with a single hot code.
    """
    normalized = normalize_code(code) if code else None
    row = prepared.execute(
        "rs_attribution_facts",
        _facts_sql(),
        [merchant.pk, livemode, order_id, external_id, email_normalized, program_id, before, normalized],
    )
    existing_order_id, returning, referral_id, referee_id = row[:4]
    return AttributionFacts(existing_order_id, bool(returning), referral_id, referee_id, _code_row(merchant, row[4:]))


def participant_export(*, participant: Participant) -> dict:
    """Everything we hold about this person, for "download my data" (friends' addresses stay masked)."""
    merchant = participant.merchant

    def mask(email: str | None) -> str | None:
        if not email or "@" not in email:
            return email
        local, domain = email.split("@", 1)
        return f"{local[:1]}***@{domain}"

    codes = ReferralCode.objects.for_merchant(merchant).filter(participant=participant).select_related("program")
    referrals = Referral.objects.for_merchant(merchant).filter(referrer=participant).select_related("program")
    return {
        "shop": merchant.name,
        "profile": {
            "id": participant.pk,
            "external_id": participant.external_id,
            "email": participant.email,
            "name": participant.name,
            "language": participant.language,
            "status": participant.status,
            "marketing_consent": participant.marketing_consent,
            "joined_at": participant.created_at.isoformat(),
        },
        "codes": [{"program": c.program.name, "code": c.code, "status": c.status} for c in codes],
        "link_clicks": Click.objects.for_merchant(merchant).filter(participant=participant, is_bot=False).count(),
        "friends_referred": [
            {
                "program": r.program.name,
                "friend": mask(r.referee_email) or "—",
                "status": r.status,
                "date": r.created_at.date().isoformat(),
            }
            for r in referrals
        ],
        "friends_purchases": Conversion.objects.for_merchant(merchant)
        .filter(referral__referrer=participant, status=Conversion.Status.ATTRIBUTED)
        .count(),
        "invites_sent": [
            {"to": i.email, "date": i.created_at.date().isoformat(), "status": i.status}
            for i in Invite.objects.for_merchant(merchant).filter(participant=participant)
        ],
        "shares": ShareEvent.objects.for_merchant(merchant).filter(participant=participant).count(),
    }
