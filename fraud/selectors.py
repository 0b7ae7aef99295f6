"""Reads for fraud scoring: a program's rules, the facts the checks look at (a few indexed queries per assessment),
blocklist matches, and assessment summaries for the API."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import timedelta

from django.db import connection
from django.db.models import BooleanField, CharField, Count, Exists, F, Func, OuterRef, Q, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, JSONObject

from fraud.checks import Facts, Trace, domain_and_parents, email_domain
from fraud.models import BlocklistEntry, FraudAssessment, FraudSettings, Sighting
from programs.models import Participant, Program
from tracking.models import Conversion, Referral

SETTINGS_FIELDS = (
    "review_threshold",
    "reject_threshold",
    "velocity_per_hour",
    "velocity_per_day",
    "min_seconds_click_to_order",
    "check_disposable_email",
)
# A referrer with more sightings or own orders than this is judged on the most recent ones.
TRACE_LIMIT = 200


def settings_for(*, program: Program) -> FraudSettings:
    """The program's fraud rules: its saved row, else an unsaved row with the defaults."""
    found = FraudSettings.objects.for_merchant(program.merchant_id).filter(program=program).first()
    return found or FraudSettings(merchant_id=program.merchant_id, program=program)


def _rules_subquery(merchant_id: int, program_ref: str) -> Subquery:
    """The program's rules as one JSON column of the query that loads the thing to score (NULL: defaults)."""
    rules = FraudSettings.objects.for_merchant(merchant_id).filter(program=OuterRef(program_ref)).order_by()
    return Subquery(rules.values(rules=JSONObject(**{name: name for name in SETTINGS_FIELDS}))[:1])


def _rules(program_id: int, merchant_id: int, loaded: dict | None) -> FraudSettings:
    return FraudSettings(merchant_id=merchant_id, program_id=program_id, **(loaded or {}))


# --- loading what to score ------------------------------------------------------------------------------------------


def _for_scoring(merchant_id: int):
    """Orders with their referral, referrer and clicks, the id of an existing assessment (`assessment_id`), the
    program's rules (`fraud_rules`) and whether the merchant has a blocklist at all."""
    return (
        Conversion.objects.for_merchant(merchant_id)
        .select_related("referral__referrer", "referral__click", "click")
        .annotate(
            assessment_id=Subquery(
                FraudAssessment.objects.for_merchant(merchant_id)
                .filter(conversion=OuterRef("pk"))
                .order_by()
                .values("pk")[:1]
            ),
            fraud_rules=_rules_subquery(merchant_id, "referral__program"),
            merchant_has_blocklist=Exists(BlocklistEntry.objects.for_merchant(merchant_id)),
        )
    )


def conversion_for_scoring(*, merchant_id: int, conversion_id: int) -> Conversion:
    """The order with its referral, referrer and clicks, the id of an existing assessment (`assessment_id`), the
    program's rules (`fraud_rules`) and whether the merchant has a blocklist at all: one query."""
    return _for_scoring(merchant_id).get(pk=conversion_id)


def referral_for_scoring(*, merchant_id: int, referral_id: int) -> Referral:
    """The friend's referral with its referrer and click, an existing sign-up assessment's id, the rules and the
    blocklist flag: one query."""
    return (
        Referral.objects.for_merchant(merchant_id)
        .select_related("referrer", "click")
        .annotate(
            assessment_id=Subquery(
                FraudAssessment.objects.for_merchant(merchant_id)
                .filter(referral=OuterRef("pk"), conversion__isnull=True)
                .order_by()
                .values("pk")[:1]
            ),
            fraud_rules=_rules_subquery(merchant_id, "program"),
            merchant_has_blocklist=Exists(BlocklistEntry.objects.for_merchant(merchant_id)),
        )
        .get(pk=referral_id)
    )


# --- facts ----------------------------------------------------------------------------------------------------------


def referrer_traces(
    *, merchant_id: int, referrer: Participant, exclude_conversion_id: int | None = None
) -> list[Trace]:
    """The referrer's sightings and own orders (orders whose customer id or normalised email is the referrer's),
    most recent sightings first: one query (a UNION of two index scans)."""
    sightings = (
        Sighting.objects.for_merchant(merchant_id)
        .filter(participant_id=referrer.pk)
        .order_by("-seen_at")
        .annotate(t_source=Value("sighting"), t_ip=Value(""), t_pay=Value(""), t_addr=Value(""))
        .values_list("t_source", "ip_hash", "t_ip", "user_agent", "device_id", "t_pay", "t_addr")[:TRACE_LIMIT]
    )
    identity = Q()
    if referrer.external_id:
        identity |= Q(customer_external_id=referrer.external_id)
    if referrer.email_normalized:
        identity |= Q(customer_email_normalized=referrer.email_normalized)
    query = sightings
    if identity:
        orders = Conversion.objects.for_merchant(merchant_id).filter(identity, livemode=referrer.livemode)
        if exclude_conversion_id is not None:
            orders = orders.exclude(pk=exclude_conversion_id)
        orders = (
            orders.order_by()
            .annotate(
                t_source=Value("order"),
                t_ip=Coalesce(Func(F("ip"), function="host", output_field=CharField()), Value("")),
            )
            .values_list(
                "t_source", "ip_hash", "t_ip", "user_agent", "device_id", "payment_fingerprint", "address_hash"
            )[:TRACE_LIMIT]
        )
        query = sightings.union(orders, all=True)
    return [Trace(*row) for row in query]


def blocklist_hits(
    *,
    merchant_id: int,
    friend_email: str | None,
    friend_ips: Iterable[str],
    friend_ip_hashes: Iterable[str],
    referrer_email: str | None,
    referrer_ips: Iterable[str],
    referrer_ip_hashes: Iterable[str],
) -> list[str]:
    """Which of the friend's and the referrer's emails, email domains (and parent domains), IP addresses (raw or
    hashed) and networks are on the merchant's blocklist, as readable phrases: one query."""
    sides = {
        "friend": (friend_email, set(friend_ips), set(friend_ip_hashes)),
        "referrer": (referrer_email, set(referrer_ips), set(referrer_ip_hashes)),
    }
    emails = {email for email, _ips, _hashes in sides.values() if email}
    domains = {d for email in emails for d in domain_and_parents(email_domain(email))}
    ips = {ip for _email, side_ips, _hashes in sides.values() for ip in side_ips if ip}
    hashes = {h for _email, _ips, side_hashes in sides.values() for h in side_hashes if h}
    if not (emails or ips or hashes):
        return []
    kind = BlocklistEntry.Kind
    wanted = Q()
    if emails:
        wanted |= Q(kind=kind.EMAIL, value__in=emails)
    if domains:
        wanted |= Q(kind=kind.DOMAIN, value__in=domains)
    if ips:
        wanted |= Q(kind=kind.IP, value__in=ips)
        # CASE keeps the cast away from rows that are not networks (PostgreSQL may evaluate an AND in any order).
        wanted |= Q(
            RawSQL(
                'CASE WHEN "fraud_blocklistentry"."kind" = %s '
                'THEN "fraud_blocklistentry"."value"::cidr >>= ANY(%s::inet[]) ELSE FALSE END',
                (kind.CIDR.value, sorted(ips)),
                output_field=BooleanField(),
            )
        )
    if hashes:
        wanted |= Q(kind=kind.IP, ip_hash__in=hashes)
    rows = (
        BlocklistEntry.objects.for_merchant(merchant_id)
        .filter(wanted)
        .order_by()
        .values_list("kind", "value", "ip_hash")
    )
    hits: list[str] = []
    for entry_kind, value, ip_hash in rows[:50]:
        for side, (email, side_ips, side_hashes) in sides.items():
            if _entry_matches(entry_kind, value, ip_hash, email, side_ips, side_hashes):
                label = BlocklistEntry.Kind(entry_kind).label
                hits.append(f"the {side}'s {str(label).lower()} ({value})")
    return sorted(set(hits))


def _entry_matches(kind: str, value: str, ip_hash: str, email: str | None, ips: set[str], hashes: set[str]) -> bool:
    if kind == BlocklistEntry.Kind.EMAIL:
        return email == value
    if kind == BlocklistEntry.Kind.DOMAIN:
        return value in domain_and_parents(email_domain(email))
    if kind == BlocklistEntry.Kind.IP:
        return value in ips or ip_hash in hashes
    network = ipaddress.ip_network(value)
    return any(_in_network(ip, network) for ip in ips)


def _in_network(ip: str, network) -> bool:
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def _friend_ips(*items) -> dict[str, set[str]]:
    """{ip_hash: user agents seen with it} of the friend's click and order."""
    seen: dict[str, set[str]] = {}
    for ip_hash, user_agent in items:
        if ip_hash:
            seen.setdefault(ip_hash, set()).update([user_agent] if user_agent else [])
    return seen


def _with_blocklist(facts: Facts, *, merchant_id: int, referrer_email: str | None) -> Facts:
    referrer_ips = {t.ip for t in facts.referrer_traces if t.ip}
    referrer_hashes = {t.ip_hash for t in facts.referrer_traces if t.ip_hash}
    facts.blocklisted = blocklist_hits(
        merchant_id=merchant_id,
        friend_email=facts.friend_email,
        friend_ips=facts.friend_raw_ips,
        friend_ip_hashes=facts.friend_ips.keys(),
        referrer_email=referrer_email,
        referrer_ips=referrer_ips,
        referrer_ip_hashes=referrer_hashes,
    )
    return facts


def _order_facts(conversion: Conversion, *, traces: list, last_hour: int, last_day: int) -> Facts:
    """The facts of one attributed order (loaded with its referral, referrer and clicks), given what the caller
    looked up about the referrer: its traces and its recent attributed orders."""
    referral = conversion.referral
    referrer = referral.referrer
    click = conversion.click or referral.click
    return Facts(
        rules=_rules(referral.program_id, conversion.merchant_id, conversion.fraud_rules),
        referrer_id=referrer.pk,
        referrer_status=referrer.status,
        referrer_external_id=referrer.external_id,
        referrer_email=referrer.email_normalized,
        referee_participant_id=referral.referee_id,
        friend_external_id=conversion.customer_external_id or referral.referee_external_id,
        friend_email=conversion.customer_email_normalized or referral.referee_email_normalized,
        friend_ips=_friend_ips(
            (click.ip_hash, click.user_agent) if click else ("", ""), (conversion.ip_hash, conversion.user_agent)
        ),
        friend_raw_ips=[conversion.ip] if conversion.ip else [],
        device_ids=tuple(d for d in (conversion.device_id, click.device_id if click else "") if d),
        payment_fingerprint=conversion.payment_fingerprint,
        address_hash=conversion.address_hash,
        is_new_customer=conversion.is_new_customer,
        ordered_at=conversion.occurred_at,
        clicked_at=click.occurred_at if click else None,
        referrer_traces=traces,
        recent_last_hour=last_hour,
        recent_last_day=last_day,
        referral_rejected_as_fraud=conversion.status == Conversion.Status.REJECTED,
    )


def conversion_facts(*, conversion: Conversion) -> Facts:
    """What the checks need about an attributed order, from a conversion loaded by conversion_for_scoring: two
    more queries (the referrer's traces; the referrer's recent attributed orders), three with a blocklist."""
    referrer = conversion.referral.referrer
    merchant_id = conversion.merchant_id
    at = conversion.occurred_at
    recent = (
        Conversion.objects.for_merchant(merchant_id)
        .filter(
            livemode=conversion.livemode,
            referral__referrer_id=referrer.pk,
            status=Conversion.Status.ATTRIBUTED,
            occurred_at__gt=at - timedelta(days=1),
            occurred_at__lte=at,
        )
        .aggregate(day=Count("pk"), hour=Count("pk", filter=Q(occurred_at__gt=at - timedelta(hours=1))))
    )
    facts = _order_facts(
        conversion,
        traces=referrer_traces(merchant_id=merchant_id, referrer=referrer, exclude_conversion_id=conversion.pk),
        last_hour=recent["hour"],
        last_day=recent["day"],
    )
    if conversion.merchant_has_blocklist:
        _with_blocklist(facts, merchant_id=merchant_id, referrer_email=referrer.email_normalized)
    return facts


def signup_facts(*, referral: Referral) -> Facts:
    """What the checks need about a friend's sign-up (no order yet), from a referral loaded by
    referral_for_scoring. Velocity counts the referrer's new referrals instead of orders."""
    referrer = referral.referrer
    merchant_id = referral.merchant_id
    at = referral.created_at
    recent = (
        Referral.objects.for_merchant(merchant_id)
        .filter(
            livemode=referral.livemode,
            referrer_id=referrer.pk,
            created_at__gt=at - timedelta(days=1),
            created_at__lte=at,
        )
        .aggregate(day=Count("pk"), hour=Count("pk", filter=Q(created_at__gt=at - timedelta(hours=1))))
    )
    click = referral.click
    facts = Facts(
        rules=_rules(referral.program_id, merchant_id, referral.fraud_rules),
        referrer_id=referrer.pk,
        referrer_status=referrer.status,
        referrer_external_id=referrer.external_id,
        referrer_email=referrer.email_normalized,
        referee_participant_id=referral.referee_id,
        friend_external_id=referral.referee_external_id,
        friend_email=referral.referee_email_normalized,
        friend_ips=_friend_ips((click.ip_hash, click.user_agent) if click else ("", "")),
        device_ids=(click.device_id,) if click and click.device_id else (),
        referrer_traces=referrer_traces(merchant_id=merchant_id, referrer=referrer),
        recent_last_hour=recent["hour"],
        recent_last_day=recent["day"],
        velocity_what="referred sign-ups",
    )
    if referral.merchant_has_blocklist:
        _with_blocklist(facts, merchant_id=merchant_id, referrer_email=referrer.email_normalized)
    return facts


def conversions_for_scoring(*, merchant_id: int, conversion_ids: Iterable[int]) -> list[Conversion]:
    """conversion_for_scoring for many orders at once (the batched rewards pipeline): one query, in id order."""
    return list(_for_scoring(merchant_id).filter(pk__in=list(conversion_ids)).order_by("pk"))


# Per order of the batch: the referrer's attributed orders in the day (and hour) up to it, as conversion_facts counts.
_RECENT_MANY = """
    SELECT c.id, count(o.id), count(o.id) FILTER (WHERE o.occurred_at > c.occurred_at - interval '1 hour')
    FROM tracking_conversion c
    JOIN tracking_referral cr ON cr.id = c.referral_id AND cr.merchant_id = c.merchant_id
    JOIN tracking_referral r ON r.merchant_id = c.merchant_id AND r.referrer_id = cr.referrer_id
    JOIN tracking_conversion o ON o.merchant_id = c.merchant_id AND o.referral_id = r.id
        AND o.livemode = c.livemode AND o.status = 'attributed'
        AND o.occurred_at > c.occurred_at - interval '1 day' AND o.occurred_at <= c.occurred_at
    WHERE c.merchant_id = %s AND c.id = ANY(%s)
    GROUP BY c.id
"""

# The referrers' most recent sightings, at most TRACE_LIMIT each.
_SIGHTINGS_MANY = """
    SELECT participant_id, ip_hash, user_agent, device_id FROM (
        SELECT participant_id, ip_hash, user_agent, device_id,
            row_number() OVER (PARTITION BY participant_id ORDER BY seen_at DESC) AS n
        FROM fraud_sighting WHERE merchant_id = %s AND participant_id = ANY(%s)
    ) s WHERE n <= %s
"""


def conversions_facts(*, conversions: list[Conversion]) -> dict[int, Facts]:
    """conversion_facts for a batch of orders loaded by conversions_for_scoring, with the same answers: one query
    for every order's velocity, one for the referrers' sightings, one for their own orders (plus one per order
    whose merchant keeps a blocklist)."""
    if not conversions:
        return {}
    merchant_id = conversions[0].merchant_id
    ids = [c.pk for c in conversions]
    referrers = {c.referral.referrer_id: c.referral.referrer for c in conversions}
    with connection.cursor() as cursor:
        cursor.execute(_RECENT_MANY, [merchant_id, ids])
        recent = {pk: (day, hour) for pk, day, hour in cursor.fetchall()}
        cursor.execute(_SIGHTINGS_MANY, [merchant_id, list(referrers), TRACE_LIMIT])
        sightings: dict[int, list[Trace]] = {}
        for participant_id, ip_hash, user_agent, device_id in cursor.fetchall():
            sightings.setdefault(participant_id, []).append(
                Trace("sighting", ip_hash, "", user_agent, device_id, "", "")
            )
    orders = _referrers_orders(merchant_id=merchant_id, referrers=list(referrers.values()))
    facts = {}
    for conversion in conversions:
        referrer = conversion.referral.referrer
        day, hour = recent.get(conversion.pk, (0, 0))
        own = [trace for pk, trace in orders.get(referrer.pk, []) if pk != conversion.pk][:TRACE_LIMIT]
        found = _order_facts(conversion, traces=sightings.get(referrer.pk, []) + own, last_hour=hour, last_day=day)
        if conversion.merchant_has_blocklist:
            _with_blocklist(found, merchant_id=merchant_id, referrer_email=referrer.email_normalized)
        facts[conversion.pk] = found
    return facts


def _referrers_orders(*, merchant_id: int, referrers: list[Participant]) -> dict[int, list[tuple[int, Trace]]]:
    """{referrer id: [(order id, trace)]}: the orders whose customer id or normalised email is a referrer's (at
    most TRACE_LIMIT + 1 each, so that one left out as the order being scored still leaves TRACE_LIMIT)."""
    by_external = {(p.livemode, p.external_id): p.pk for p in referrers if p.external_id}
    by_email = {(p.livemode, p.email_normalized): p.pk for p in referrers if p.email_normalized}
    if not (by_external or by_email):
        return {}
    identity = Q()
    if by_external:
        identity |= Q(customer_external_id__in={value for _mode, value in by_external})
    if by_email:
        identity |= Q(customer_email_normalized__in={value for _mode, value in by_email})
    rows = (
        Conversion.objects.for_merchant(merchant_id)
        .filter(identity, livemode__in={p.livemode for p in referrers})
        .order_by()
        .annotate(t_ip=Coalesce(Func(F("ip"), function="host", output_field=CharField()), Value("")))
        .values_list(
            "pk",
            "livemode",
            "customer_external_id",
            "customer_email_normalized",
            "ip_hash",
            "t_ip",
            "user_agent",
            "device_id",
            "payment_fingerprint",
            "address_hash",
        )
    )
    found: dict[int, list[tuple[int, Trace]]] = {}
    for pk, livemode, external_id, email, ip_hash, ip, user_agent, device_id, payment, address in rows:
        owners = {by_external.get((livemode, external_id)), by_email.get((livemode, email))} - {None}
        for owner in owners:
            mine = found.setdefault(owner, [])
            if len(mine) <= TRACE_LIMIT:
                mine.append((pk, Trace("order", ip_hash, ip, user_agent, device_id, payment, address)))
    return found


# --- for the API and the admin --------------------------------------------------------------------------------------


def assessment_summary(assessment: FraudAssessment) -> dict:
    """What the shop API shows of an assessment: {"score", "decision", "signals": [{"name", "weight", "detail"}]}."""
    return {"score": assessment.score, "decision": assessment.decision, "signals": list(assessment.signals or [])}


def assessments_for_conversions(*, merchant, conversion_ids: Iterable[int]) -> dict[int, dict]:
    """{conversion id: summary} for the orders that have been scored (one query; none for no ids)."""
    ids = [pk for pk in conversion_ids if pk is not None]
    if not ids:
        return {}
    rows = (
        FraudAssessment.objects.for_merchant(merchant)
        .filter(conversion_id__in=ids)
        .order_by()
        .values_list("conversion_id", "score", "decision", "signals")
    )
    return {
        conversion_id: {"score": score, "decision": decision, "signals": list(signals or [])}
        for conversion_id, score, decision, signals in rows
    }
