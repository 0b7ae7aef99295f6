"""Writes for fraud scoring: blocklist entries, sightings of referrers, scoring orders and sign-ups, human reviews.

The rewards worker calls `conversion_assess` for every attributed order (and `referral_assess` at a friend's
sign-up) and acts on the assessment's `decision`: approve -> pay, review -> hold until a human decides, reject ->
do not pay. A human's decision (`assessment_review`) hands the order back to the rewards worker by task name.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fraud import selectors
from fraud.checks import CONVERSION_CHECKS, SIGNUP_CHECKS, run_checks
from fraud.models import BlocklistEntry, Decision, FraudAssessment, FraudReviewEvent, FraudSettings, Sighting
from programs.identity import ascii_domain, normalize_email, validate_customer_email
from programs.models import Participant
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import Conflict, PermissionDeniedError, Unprocessable, ValidationFailed
from referral_saas.tenancy.models import Membership
from tracking.clicks import hash_ip
from tracking.models import Conversion, Referral
from tracking.services import referral_reinstate, referral_reject

logger = logging.getLogger(__name__)

# The tasks the rewards worker implements; sent by name (the fraud app does not import rewards).
REWARDS_CONVERSION_TASK = "rewards.process_conversion"
REWARDS_REFERRAL_TASK = "rewards.process_referral"

_DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


class NotScorable(Unprocessable):
    code = "not_scorable"
    default_message = "Only referred orders that are attributed (or rejected as fraud) are scored."


# --- blocklist ------------------------------------------------------------------------------------------------------


def blocklist_normalize(*, kind: str, value: str) -> str:
    """The stored form of a blocklist value, or ValidationFailed: emails normalised as everywhere (lowercase, +tags
    and Gmail dots gone), domains lowercase ASCII (IDNA) without a leading "@" or "*.", IPs canonical, networks as
    address/prefix (at least /8 for IPv4 and /16 for IPv6: a wider one would block whole countries)."""
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(fields={"value": [_("Enter a value.")]})
    if kind == BlocklistEntry.Kind.EMAIL:
        try:
            validate_customer_email(value)
        except ValidationError:
            raise ValidationFailed(fields={"value": [_("Enter a valid email address.")]}) from None
        return normalize_email(value)
    if kind == BlocklistEntry.Kind.DOMAIN:
        domain = ascii_domain(value.lower().removeprefix("@").removeprefix("*."))
        if not _DOMAIN.match(domain):
            raise ValidationFailed(fields={"value": [_("Enter a domain such as mail.example.com.")]})
        return domain
    if kind == BlocklistEntry.Kind.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValidationFailed(fields={"value": [_("Enter a valid IPv4 or IPv6 address.")]}) from None
    if kind == BlocklistEntry.Kind.CIDR:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValidationFailed(fields={"value": [_("Enter a network such as 203.0.113.0/24.")]}) from None
        if network.prefixlen < (8 if network.version == 4 else 16):
            too_wide = _("This network is too wide (at least /8 for IPv4, /16 for IPv6).")
            raise ValidationFailed(fields={"value": [too_wide]})
        return network.with_prefixlen
    raise ValidationFailed(fields={"kind": [_("Choose email, domain, ip or cidr.")]})


def blocklist_entry_add(*, merchant, kind: str, value: str, note: str = "", created_by=None) -> BlocklistEntry:
    """Put a value on the merchant's blocklist, normalised. The same kind and value again returns the existing
    entry (unique per merchant, kind and value)."""
    value = blocklist_normalize(kind=kind, value=value)
    scope = BlocklistEntry.objects.for_merchant(merchant)
    try:
        with transaction.atomic():
            return scope.create(
                kind=kind,
                value=value,
                ip_hash=hash_ip(value) if kind == BlocklistEntry.Kind.IP else "",
                note=(note or "")[:300],
                created_by=created_by,
            )
    except IntegrityError:
        existing = scope.filter(kind=kind, value=value).first()
        if existing is None:  # pragma: no cover - the conflicting row must exist
            raise
        return existing


def blocklist_entry_set_note(*, entry: BlocklistEntry, note: str) -> BlocklistEntry:
    """The note is the only thing that changes on an entry (another value is another entry)."""
    entry.note = (note or "")[:300]
    entry.save(update_fields=["note"])
    return entry


# --- sightings ------------------------------------------------------------------------------------------------------


def sighting_record(
    *, merchant, participant: Participant, ip: str | None = None, user_agent: str = "", device_id: str = ""
) -> Sighting | None:
    """Remember where a referrer was seen (their IP as a keyed hash, browser, device), for the shared_ip and
    shared_device checks. Nothing is recorded without an IP or a device id. The same place again only moves
    `seen_at` (one row per participant, IP, device and browser; an upsert, safe to race)."""
    if participant.merchant_id != merchant.pk:
        raise ValidationFailed(fields={"participant": [_("Unknown participant.")]})
    ip_hash = hash_ip((ip or "").strip())
    device_id = (device_id or "").strip()[:128]
    if not (ip_hash or device_id):
        return None
    now = timezone.now()
    row = Sighting(
        merchant=merchant,
        participant=participant,
        ip_hash=ip_hash,
        user_agent=(user_agent or "")[:512],
        device_id=device_id,
        first_seen_at=now,
        seen_at=now,
    )
    Sighting.objects.for_merchant(merchant).bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["merchant", "participant", "ip_hash", "device_id", "user_agent"],
        update_fields=["seen_at"],
    )
    return row


# --- scoring --------------------------------------------------------------------------------------------------------


def decision_for(*, score: int, rules: FraudSettings) -> str:
    """Below the review threshold: approve; from it: review; from the reject threshold: reject."""
    if score >= rules.reject_threshold:
        return Decision.REJECT
    if score >= rules.review_threshold:
        return Decision.REVIEW
    return Decision.APPROVE


def _store(*, lookup: dict, fields: dict, referral: Referral) -> FraudAssessment:
    """Insert the assessment (and, for a reject, reject the referral) in one savepoint. The unique constraint
    decides a race: the loser gets the winner's row, and the referral is rejected once."""
    scope = FraudAssessment.objects.for_merchant(fields["merchant_id"])
    try:
        with transaction.atomic():
            assessment = scope.create(**fields)
            if assessment.decision == Decision.REJECT:
                referral_reject(referral=referral, reason=Referral.Reason.FRAUD)
    except IntegrityError:
        existing = scope.filter(**lookup).first()
        if existing is None:
            raise
        return existing
    if assessment.decision != Decision.APPROVE:
        logger.info(
            "fraud %s: score %s (%s)",
            assessment.decision,
            assessment.score,
            ", ".join(s["name"] for s in assessment.signals),
            extra={"merchant_id": assessment.merchant_id, "assessment_id": assessment.pk},
        )
    return assessment


def conversion_assess(*, conversion: Conversion) -> FraudAssessment:
    """Score a referred order and decide it by the program's thresholds (approve below review, review below
    reject, reject from it). A reject also rejects the referral and its attributed orders (reason "fraud").

    An order that arrived after its referral was rejected as fraud (stored as rejected, reason "fraud") is scored
    too: it carries the referral_rejected signal (100, a reject), so that a human can still overturn it.

    Idempotent: an order is scored once (unique merchant + conversion); a second or concurrent call returns the
    stored assessment. Any other order (unattributed, or refused at attribution) raises NotScorable.
    """
    loaded = selectors.conversion_for_scoring(merchant_id=conversion.merchant_id, conversion_id=conversion.pk)
    if loaded.assessment_id is not None:
        return FraudAssessment.objects.for_merchant(conversion.merchant_id).get(pk=loaded.assessment_id)
    rejected_as_fraud = loaded.status == Conversion.Status.REJECTED and loaded.rejection_reason == Referral.Reason.FRAUD
    if loaded.referral is None or not (loaded.status == Conversion.Status.ATTRIBUTED or rejected_as_fraud):
        raise NotScorable(_("Order %(order)s is not attributed to a referral.") % {"order": loaded.order_id})
    facts = selectors.conversion_facts(conversion=loaded)
    score, signals = run_checks(facts, CONVERSION_CHECKS)
    decision = decision_for(score=score, rules=facts.rules)
    return _store(
        lookup={"conversion_id": loaded.pk},
        fields={
            "merchant_id": loaded.merchant_id,
            "livemode": loaded.livemode,
            "program_id": loaded.referral.program_id,
            "referral_id": loaded.referral_id,
            "conversion_id": loaded.pk,
            "score": score,
            "signals": [s.as_dict() for s in signals],
            "auto_decision": decision,
            "decision": decision,
        },
        referral=loaded.referral,
    )


def conversions_assess(*, merchant_id: int, conversion_ids: list[int]) -> tuple[dict[int, FraudAssessment], list[int]]:
    """conversion_assess for a batch of orders (the batched rewards pipeline): the same facts, checks and decisions,
    loaded in a few queries and stored in one INSERT. Returns ({order id: assessment}, the ids left for
    conversion_assess one at a time, in the order given).

    Left to one at a time: orders that are not scorable (conversion_assess says why), and every order of a referrer
    who has an order to reject in the batch: a reject rejects the referral and its orders, which changes what the
    referrer's other orders are scored on, so they are scored after it, as one order after another would be. A
    batch that meets an assessment stored meanwhile (the unique constraint) stores nothing and leaves all to one
    at a time.
    """
    loaded = selectors.conversions_for_scoring(merchant_id=merchant_id, conversion_ids=conversion_ids)
    stored_ids = {c.pk: c.assessment_id for c in loaded if c.assessment_id is not None}
    scorable = [
        c
        for c in loaded
        if c.assessment_id is None
        and c.referral is not None
        and (
            c.status == Conversion.Status.ATTRIBUTED
            or (c.status == Conversion.Status.REJECTED and c.rejection_reason == Referral.Reason.FRAUD)
        )
    ]
    facts = selectors.conversions_facts(conversions=scorable)
    scored = {}
    for conversion in scorable:
        score, signals = run_checks(facts[conversion.pk], CONVERSION_CHECKS)
        scored[conversion.pk] = (score, signals, decision_for(score=score, rules=facts[conversion.pk].rules))
    rejecting = {c.referral.referrer_id for c in scorable if scored[c.pk][2] == Decision.REJECT}
    rows = [
        FraudAssessment(
            merchant_id=merchant_id,
            livemode=c.livemode,
            program_id=c.referral.program_id,
            referral_id=c.referral_id,
            conversion_id=c.pk,
            score=scored[c.pk][0],
            signals=[s.as_dict() for s in scored[c.pk][1]],
            auto_decision=scored[c.pk][2],
            decision=scored[c.pk][2],
        )
        for c in scorable
        if c.referral.referrer_id not in rejecting
    ]
    try:
        with transaction.atomic():
            FraudAssessment.objects.for_merchant(merchant_id).bulk_create(rows)
    except IntegrityError:  # scored meanwhile by another worker: each order is looked at again on its own
        rows = []
    found = {a.conversion_id: a for a in rows}
    for assessment in rows:
        if assessment.decision != Decision.APPROVE:
            logger.info(
                "fraud %s: score %s (%s)",
                assessment.decision,
                assessment.score,
                ", ".join(s["name"] for s in assessment.signals),
                extra={"merchant_id": merchant_id, "assessment_id": assessment.pk},
            )
    if stored_ids:
        found.update(
            (a.conversion_id, a)
            for a in FraudAssessment.objects.for_merchant(merchant_id).filter(pk__in=stored_ids.values())
        )
    return found, [pk for pk in conversion_ids if pk not in found]


def referral_assess(*, referral: Referral) -> FraudAssessment:
    """Score a friend's sign-up (before any order) with the checks that need no order: self-referral, blocked
    referrer, blocklist, shared IP and device (the click's), disposable email, sign-up velocity. Decided like an
    order; a reject rejects the referral (reason "fraud"), so the friend's later orders are not attributed.

    Idempotent: one sign-up assessment per referral (unique merchant + referral where there is no order).
    A referral that is already rejected raises NotScorable.
    """
    loaded = selectors.referral_for_scoring(merchant_id=referral.merchant_id, referral_id=referral.pk)
    if loaded.assessment_id is not None:
        return FraudAssessment.objects.for_merchant(referral.merchant_id).get(pk=loaded.assessment_id)
    if loaded.status == Referral.Status.REJECTED:
        raise NotScorable(_("This referral is rejected already."))
    facts = selectors.signup_facts(referral=loaded)
    score, signals = run_checks(facts, SIGNUP_CHECKS)
    decision = decision_for(score=score, rules=facts.rules)
    return _store(
        lookup={"referral_id": loaded.pk, "conversion__isnull": True},
        fields={
            "merchant_id": loaded.merchant_id,
            "livemode": loaded.livemode,
            "program_id": loaded.program_id,
            "referral_id": loaded.pk,
            "conversion_id": None,
            "score": score,
            "signals": [s.as_dict() for s in signals],
            "auto_decision": decision,
            "decision": decision,
        },
        referral=loaded,
    )


# --- human review ---------------------------------------------------------------------------------------------------


def _check_reviewer(*, merchant_id: int, user) -> None:
    if user is None or not user.is_active:
        raise PermissionDeniedError(_("Sign in to review."))
    if user.is_superuser:
        return
    membership = Membership.objects.for_merchant(merchant_id).filter(user=user).first()
    if membership is None or not membership.can_write:
        raise PermissionDeniedError(_("Only owners and admins can approve or reject."))


def _continue_rewards_on_commit(*, merchant_id: int, conversion_id: int | None, referral_id: int) -> None:
    if conversion_id is not None:
        enqueue_on_commit(REWARDS_CONVERSION_TASK, merchant_id=merchant_id, conversion_id=conversion_id)
    else:
        enqueue_on_commit(REWARDS_REFERRAL_TASK, merchant_id=merchant_id, referral_id=referral_id)


def assessment_review(*, assessment: FraudAssessment, approve: bool, reason: str, user) -> FraudAssessment:
    """A merchant's owner or admin decides an assessment in review, or overturns an automatic decision, with a
    reason. Every decision is kept in the audit trail (FraudReviewEvent).

    Reject: the referral and its attributed orders are rejected (reason "fraud"). Approving a rejected assessment
    reinstates the referral and this assessment's order (other orders rejected as fraud stay rejected until their
    own assessments are approved); a referral rejected for another reason (e.g. self-referral) stays rejected.
    After commit, the rewards worker is told to continue (task `rewards.process_conversion`, or
    `rewards.process_referral` for a sign-up); if the broker is down, its sweeper picks the order up later.

    Confirming an automatic decision nobody has reviewed yet (reject an automatic rejection) records the review and
    changes nothing else; deciding what a human already decided is a Conflict.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [_("Say why (it is kept in the audit trail).")]})
    merchant_id = assessment.merchant_id
    _check_reviewer(merchant_id=merchant_id, user=user)
    wanted = Decision.APPROVE if approve else Decision.REJECT
    with transaction.atomic():
        locked = (
            FraudAssessment.objects.for_merchant(merchant_id)
            .select_for_update(of=("self",))
            .select_related("referral")
            .get(pk=assessment.pk)
        )
        previous = locked.decision
        confirming = previous == wanted and locked.reviewed_at is None and previous == locked.auto_decision
        if previous == wanted and not confirming:
            raise Conflict(_("This assessment is already decided: %(decision)s.") % {"decision": wanted})
        locked.decision = wanted
        locked.reviewed_by = user
        locked.reviewed_at = timezone.now()
        locked.review_reason = reason[:2000]
        locked.save(update_fields=["decision", "reviewed_by", "reviewed_at", "review_reason"])
        FraudReviewEvent.objects.for_merchant(merchant_id).create(
            merchant_id=merchant_id,
            assessment=locked,
            user=user,
            action=wanted,
            previous_decision=previous,
            reason=locked.review_reason,
        )
        if confirming:
            return locked
        if wanted == Decision.REJECT:
            referral_reject(referral=locked.referral, reason=Referral.Reason.FRAUD)
        elif previous == Decision.REJECT:
            referral_reinstate(
                referral=locked.referral,
                reason=Referral.Reason.FRAUD,
                conversion_ids=[locked.conversion_id] if locked.conversion_id else [],
            )
        _continue_rewards_on_commit(
            merchant_id=merchant_id, conversion_id=locked.conversion_id, referral_id=locked.referral_id
        )
    return locked
