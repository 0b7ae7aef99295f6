"""Writes for codes, referrals, conversions and refunds. Attribution itself lives in tracking/attribution.py."""

from __future__ import annotations

import re
import secrets
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Round
from django.utils import timezone
from django.utils.translation import gettext as _

from programs.identity import EMAIL_MAX_LENGTH, ascii_letters, normalize_code, normalize_email
from programs.models import Participant, Program, ProgramVariant
from programs.selectors import variant_for, variant_pick
from programs.services import participant_find_or_create
from referral_saas.bulk import insert_rows
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import ApplicationError, Conflict, NotFound, Unprocessable, ValidationFailed
from referral_saas.money import currency_decimals
from referral_saas.tenancy.models import Merchant
from referral_saas.webhooks.services import webhook_emit, webhook_emit_many
from tracking.attribution import conversion_record, referral_record_signup  # noqa: F401 - the public services
from tracking.exchange_rates import exchange_rates_import  # noqa: F401 - the public services
from tracking.models import CodeRoute, Conversion, Referral, ReferralCode, Refund
from tracking.selectors import code_cache_invalidate
from tracking.serializers import ParticipantOutput
from tracking.signals import participant_joined

# No 0/O, 1/I/L: codes are read aloud, copied from screenshots and typed on phones.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VANITY_PATTERN = re.compile(r"^[A-Za-z0-9-]{3,32}$")


def _generated_code(participant: Participant) -> str:
    prefix = ascii_letters((participant.name or "").split(" ")[0])[:6]
    suffix = "".join(secrets.choice(CODE_ALPHABET) for _ in range(4 if len(prefix) >= 2 else 8))
    if len(prefix) >= 2:
        return f"{prefix}-{suffix}"
    return f"{suffix[:4]}-{suffix[4:]}"


def code_ensure(*, participant: Participant, program: Program) -> ReferralCode:
    """The participant's code in the program, created (with its A/B variant) on first call. Safe to race."""
    scope = ReferralCode.objects.for_merchant(participant.merchant)
    existing = scope.filter(program=program, participant=participant).first()
    if existing is not None:
        return existing
    variant = variant_for(program=program, participant=participant)
    for _attempt in range(10):
        code = _generated_code(participant)
        try:
            with transaction.atomic():
                row = scope.create(
                    livemode=participant.livemode,
                    program=program,
                    participant=participant,
                    variant=variant,
                    code=code,
                    code_normalized=normalize_code(code),
                )
                CodeRoute.objects.create(code_normalized=row.code_normalized, merchant=row.merchant, referral_code=row)
            return row
        except IntegrityError:
            existing = scope.filter(program=program, participant=participant).first()
            if existing is not None:  # a concurrent request made it
                return existing
            continue  # the random code was taken: draw again
    raise Conflict(_("Could not allocate a unique code; try again."))  # pragma: no cover - 10 collisions


def participant_upsert(
    *,
    merchant: Merchant,
    livemode: bool,
    program: Program,
    external_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    language: str | None = None,
    marketing_consent: bool | None = None,
) -> tuple[Participant, ReferralCode, bool]:
    """Join `program`: the participant by programs.services.participant_find_or_create's rules, and their code in
    the program (made on the first join). A new participant is linked to the referral that brought them and
    announced (participant.created, with their code). Returns (participant, code, created)."""
    with transaction.atomic():
        participant, created = participant_find_or_create(
            merchant=merchant,
            livemode=livemode,
            program=program,
            external_id=external_id,
            email=email,
            name=name,
            language=language,
            marketing_consent=marketing_consent,
        )
        code = code_ensure(participant=participant, program=program)
        if created:
            referral_link_referee(participant=participant)
            _emit_participant_created(participant=participant, program=program)
    return participant, code, created


def referees_join(*, merchant: Merchant, referrals: list[Referral]) -> dict[int, Participant | ApplicationError]:
    """The friends of these referrals (none a participant yet by `referee`) join their referral's program, as
    participant_upsert makes each of them, for the rewards pipeline that pays a friend's reward to their
    participant: returns {referral id: the participant, or the ApplicationError participant_upsert raised} and
    sets each referral's `referee` (in the database too, where it had none).

    New friends are inserted together: their participants, codes and code routes one INSERT each, linked to the
    referral that brought them, announced (participant.created) in one go. A friend found as a participant, one
    who appears twice, one whose program ended or whose address is too long goes through participant_upsert one
    at a time; so does every friend of a batch that meets a concurrent insert or a taken code (a unique
    constraint), after that batch's inserts are rolled back.
    """
    result: dict[int, Participant | ApplicationError] = {}
    keys = {r.pk: _friend_key(r) for r in referrals}
    identities = [key for key in keys.values() if key is not None]
    known = _known_identities(merchant=merchant, identities=identities)
    fresh, seen = [], set()
    for referral in referrals:
        key = keys[referral.pk]
        if key is None:
            continue
        livemode, external_id, email, email_normalized = key
        parts = {(livemode, "x", external_id), (livemode, "e", email_normalized)} - {
            (livemode, "x", None),
            (livemode, "e", None),
        }
        too_long = email and max(len(email), len(email_normalized or "")) > EMAIL_MAX_LENGTH
        if parts & (known | seen) or too_long or referral.program.status == Program.Status.ENDED:
            continue
        seen |= parts
        fresh.append(referral)
    created = _referees_insert(merchant=merchant, referrals=fresh) if fresh else {}
    for referral in referrals:
        participant = created.get(referral.pk)
        if participant is None and keys[referral.pk] is not None:
            try:
                participant, _code, _created = participant_upsert(
                    merchant=merchant,
                    livemode=referral.livemode,
                    program=referral.program,
                    external_id=referral.referee_external_id,
                    email=referral.referee_email,
                )
            except ApplicationError as exc:
                result[referral.pk] = exc
                continue
            Referral.objects.for_merchant(merchant).filter(pk=referral.pk, referee__isnull=True).update(
                referee=participant
            )
        if participant is not None:
            referral.referee = participant
            result[referral.pk] = participant
    return result


def _friend_key(referral: Referral) -> tuple[bool, str | None, str | None, str | None] | None:
    external_id = (referral.referee_external_id or "").strip() or None
    email = (referral.referee_email or "").strip() or None
    email_normalized = normalize_email(email)
    if not external_id and not email_normalized:
        return None
    return referral.livemode, external_id, email, email_normalized


def _known_identities(*, merchant: Merchant, identities: list) -> set[tuple[bool, str, str]]:
    """Which of these external ids and normalised emails a participant of the merchant has already (one query)."""
    external_ids = {external_id for _mode, external_id, _email, _normalized in identities if external_id}
    emails = {normalized for _mode, _external_id, _email, normalized in identities if normalized}
    if not (external_ids or emails):
        return set()
    rows = (
        Participant.objects.for_merchant(merchant)
        .filter(Q(external_id__in=external_ids) | Q(email_normalized__in=emails))
        .values_list("livemode", "external_id", "email_normalized")
    )
    known = set()
    for livemode, external_id, email_normalized in rows:
        known |= {(livemode, "x", external_id), (livemode, "e", email_normalized)}
    return known


def _referees_insert(*, merchant: Merchant, referrals: list[Referral]) -> dict[int, Participant]:
    """Insert the participants, codes and routes of friends no participant has the identity of (the caller checked),
    linked as referral_link_referee links them. {} if a unique constraint refused any (nothing is kept then)."""
    keys = {r.pk: _friend_key(r) for r in referrals}
    bringers = _earliest_referrals(merchant=merchant, identities=list(keys.values()))
    now = timezone.now()
    participants: dict[int, Participant] = {}
    for referral in referrals:
        livemode, external_id, email, email_normalized = keys[referral.pk]
        found = [bringers.get((livemode, "x", external_id)), bringers.get((livemode, "e", email_normalized))]
        brought_by = min((f for f in found if f is not None), default=None)  # the earliest, as one OR query finds
        participants[referral.pk] = Participant(
            merchant=merchant,
            livemode=livemode,
            external_id=external_id,
            email=email,
            email_normalized=email_normalized,
            name="",
            language=referral.program.default_language,
            marketing_consent=False,
            referred_by_id=brought_by[1] if brought_by else None,
            created_at=now,
        )
    variants = {}
    for referral in referrals:
        if referral.program_id not in variants:
            variants[referral.program_id] = list(
                ProgramVariant.objects.for_merchant(merchant).filter(program_id=referral.program_id).order_by("pk")
            )
    try:
        with transaction.atomic():
            Participant.objects.for_merchant(merchant).bulk_create(list(participants.values()))
            codes = []
            for referral in referrals:
                participant = participants[referral.pk]
                code = _generated_code(participant)
                variant = variant_pick(
                    variants=variants[referral.program_id], program=referral.program, participant=participant
                )
                codes.append(
                    {
                        "merchant_id": merchant.pk,
                        "livemode": participant.livemode,
                        "program_id": referral.program_id,
                        "participant_id": participant.pk,
                        "variant_id": variant.pk if variant else None,
                        "code": code,
                        "code_normalized": normalize_code(code),
                        "created_at": now,
                    }
                )
            code_ids = insert_rows(ReferralCode, codes)
            insert_rows(
                CodeRoute,
                [
                    {"code_normalized": c["code_normalized"], "merchant_id": merchant.pk, "referral_code_id": pk}
                    for c, pk in zip(codes, code_ids, strict=True)
                ],
                returning=None,
            )
    except IntegrityError:  # a friend joined meanwhile, or a code was taken: one at a time instead
        return {}
    # The referral that brought each one, and each batch referral, get their friend (where they had none).
    links = {}
    for referral in referrals:
        participant = participants[referral.pk]
        links.setdefault(referral.pk, participant.pk)
        if participant.referred_by_id:
            links.setdefault(participant.referred_by_id, participant.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_referral AS r SET referee_id = v.participant_id "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(referral_id, participant_id) "
            "WHERE r.merchant_id = %s AND r.id = v.referral_id AND r.referee_id IS NULL",
            [list(links), list(links.values()), merchant.pk],
        )
    webhook_emit_many(
        merchant=merchant,
        events=[
            (participants[r.pk].livemode, "participant.created", partial(_participant_data, participants[r.pk], r))
            for r in referrals
        ],
    )
    return participants


def _participant_data(participant: Participant, referral: Referral) -> dict:
    """participant.created's data for a friend joined with their code (built only when an endpoint listens)."""
    code = ReferralCode.objects.for_merchant(participant.merchant_id).get(participant=participant)
    code.program = referral.program
    participant._prefetched_objects_cache = {"codes": [code]}
    return dict(ParticipantOutput(participant, context={"program_slug": referral.program.slug}).data)


def _earliest_referrals(*, merchant: Merchant, identities: list) -> dict[tuple, tuple]:
    """{(livemode, "x", external id) / (livemode, "e", normalised email): (created_at, id) of the earliest referral
    not rejected of a friend with it}: what referral_link_referee finds for a new participant (one query)."""
    external_ids = {external_id for _mode, external_id, _email, _normalized in identities if external_id}
    emails = {normalized for _mode, _external_id, _email, normalized in identities if normalized}
    rows = (
        Referral.objects.for_merchant(merchant)
        .filter(Q(referee_external_id__in=external_ids) | Q(referee_email_normalized__in=emails))
        .exclude(status=Referral.Status.REJECTED)
        .order_by("created_at")
        .values_list("created_at", "pk", "livemode", "referee_external_id", "referee_email_normalized")
    )
    found: dict[tuple, tuple] = {}
    for created_at, pk, livemode, external_id, email_normalized in rows:
        if external_id:
            found.setdefault((livemode, "x", external_id), (created_at, pk))
        if email_normalized:
            found.setdefault((livemode, "e", email_normalized), (created_at, pk))
    return found


def participant_join(
    *,
    merchant: Merchant,
    livemode: bool,
    program: Program,
    external_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    language: str | None = None,
    marketing_consent: bool | None = None,
    ip: str | None = None,
    user_agent: str = "",
    device_id: str = "",
) -> tuple[Participant, ReferralCode, bool]:
    """A customer joins `program` (the shop's participant API, a portal sign-in link, the shop-signed portal link):
    participant_upsert's rules, then where they joined from is told (tracking.signals.participant_joined: fraud
    remembers it, as a friend's order from the same IP or device is a signal; it records nothing without an IP or a
    device id). Returns (participant, code, created).
    """
    participant, code, created = participant_upsert(
        merchant=merchant,
        livemode=livemode,
        program=program,
        external_id=external_id,
        email=email,
        name=name,
        language=language,
        marketing_consent=marketing_consent,
    )
    participant_joined.send(
        sender=Participant,
        participant=participant,
        merchant=merchant,
        ip=ip,
        user_agent=user_agent,
        device_id=device_id,
    )
    return participant, code, created


TEST_REFERRER_EXTERNAL_ID = "rs-test-referrer"  # the program's one test-mode "Test referrer"


def test_referrer_join(*, merchant: Merchant, program: Program) -> Participant:
    """The merchant's one test-mode "Test referrer" in `program` (found by its external id, joined the first time):
    whom the install page's test order and the staff's "portal as the test referrer" use. No email: a test run
    never writes to a real inbox. Test mode: their code works with test API keys only."""
    participant, _code, _created = participant_join(
        merchant=merchant, livemode=False, program=program, external_id=TEST_REFERRER_EXTERNAL_ID,
        name=_("Test referrer"),
    )  # fmt: skip
    return participant


def _emit_participant_created(*, participant: Participant, program: Program) -> None:
    # The webhook carries the participant exactly as the shop API shows it (one representation to parse).
    def data() -> dict:
        return dict(ParticipantOutput(participant, context={"program_slug": program.slug}).data)

    webhook_emit(
        merchant=participant.merchant, livemode=participant.livemode, event_type="participant.created", data=data
    )


def code_vanity_check(*, code: ReferralCode, vanity: str) -> str:
    """The rules for a vanity code: 3-32 letters, digits or dashes, and free platform-wide (links name no
    merchant). Returns the cleaned code."""
    vanity = (vanity or "").strip()
    if not VANITY_PATTERN.match(vanity):
        raise ValidationFailed(fields={"code": [_("Use 3 to 32 letters, digits or dashes.")]})
    normalized = normalize_code(vanity)
    if normalized != code.code_normalized and CodeRoute.objects.filter(code_normalized=normalized).exists():
        raise Conflict(_("This code is already taken."), fields={"code": [_("This code is already taken.")]})
    return vanity


@transaction.atomic
def code_set_vanity(*, code: ReferralCode, vanity: str) -> ReferralCode:
    """Replace a generated code with the merchant's choice. The old link stops working."""
    vanity = code_vanity_check(code=code, vanity=vanity)
    normalized = normalize_code(vanity)
    if normalized == code.code_normalized:
        code.code, code.is_vanity = vanity, True
        code.save(update_fields=["code", "is_vanity"])
        return code
    old = code.code_normalized
    try:
        with transaction.atomic():
            CodeRoute.objects.filter(referral_code=code).delete()
            code.code, code.code_normalized, code.is_vanity = vanity, normalized, True
            code.save(update_fields=["code", "code_normalized", "is_vanity"])
            CodeRoute.objects.create(code_normalized=normalized, merchant=code.merchant, referral_code=code)
    except IntegrityError as exc:
        raise Conflict(_("This code is already taken."), fields={"code": [_("This code is already taken.")]}) from exc
    _forget_code(old)
    _forget_code(normalized)
    return code


def _forget_code(code_normalized: str) -> None:
    """Drop cached lookups now (this process) and again after commit (so no reader caches the old row)."""
    code_cache_invalidate(code_normalized=code_normalized)
    transaction.on_commit(lambda: code_cache_invalidate(code_normalized=code_normalized))


def code_set_status(*, code: ReferralCode, status: str) -> ReferralCode:
    if status not in ReferralCode.Status.values:
        raise ValidationFailed(fields={"status": [_("Use active or disabled.")]})
    code.status = status
    code.save(update_fields=["status"])
    _forget_code(code.code_normalized)
    return code


def referral_link_referee(*, participant: Participant) -> None:
    """A new participant who was referred earlier: remember who brought them."""
    if participant.referred_by_id:
        return
    match = Q()
    if participant.external_id:
        match |= Q(referee_external_id=participant.external_id)
    if participant.email_normalized:
        match |= Q(referee_email_normalized=participant.email_normalized)
    if not match:
        return
    referral = (
        Referral.objects.for_merchant(participant.merchant)
        .filter(match, livemode=participant.livemode)
        .exclude(status=Referral.Status.REJECTED)
        .order_by("created_at")
        .first()
    )
    if referral is not None:
        Participant.objects.for_merchant(participant.merchant).filter(pk=participant.pk).update(referred_by=referral)
        Referral.objects.for_merchant(participant.merchant).filter(pk=referral.pk, referee__isnull=True).update(
            referee=participant
        )
        participant.referred_by = referral


def participant_erase_tracking(*, participant: Participant) -> None:
    """Erase what tracking holds about a person (as referrer and as friend) and disable their codes."""
    merchant = participant.merchant
    codes = ReferralCode.objects.for_merchant(merchant).filter(participant=participant)
    normalized = list(codes.values_list("code_normalized", flat=True))
    codes.update(status=ReferralCode.Status.DISABLED)
    Referral.objects.for_merchant(merchant).filter(referee=participant).update(
        referee_email=None, referee_email_normalized=None, referee_external_id=None
    )
    for value in normalized:
        _forget_code(value)


# --- refunds ----------------------------------------------------------------------------------------------------


def refund_record(
    *, merchant, livemode: bool, order_id: str, amount, refund_id: str, reason: str = ""
) -> tuple[Refund, bool]:
    """Record a full or partial refund. The same refund_id twice is one refund; more than what remains is 422.

    The remaining amount is guarded by the database: refunded_amount is raised by a conditional UPDATE and a check
    constraint keeps it within the order amount, so concurrent refunds cannot over-refund. The refund is in the
    order's currency; in the program's currency, what the customer keeps is converted at the order's own rate, so
    the program amount refunded never passes the program amount (a full refund takes back exactly all of it).
    """
    conversion = Conversion.objects.for_merchant(merchant).filter(livemode=livemode, order_id=order_id).first()
    if conversion is None:
        raise NotFound(_("No order with this order_id."))
    places = currency_decimals(conversion.currency)
    if amount.as_tuple().exponent < -places:
        raise ValidationFailed(
            fields={"amount": [_("At most %(n)d decimal places for %(c)s.") % {"n": places, "c": conversion.currency}]}
        )
    refund_id = (refund_id or "").strip()
    if not refund_id:
        raise ValidationFailed(fields={"refund_id": [_("The shop's id of this refund is required.")]})
    scope = Refund.objects.for_merchant(merchant)
    existing = scope.filter(conversion=conversion, refund_id=refund_id).first()
    if existing is not None:
        return _same_refund_or_conflict(existing, amount), False
    try:
        with transaction.atomic():
            refund = scope.create(
                livemode=livemode,
                conversion=conversion,
                refund_id=refund_id,
                amount=amount,
                currency=conversion.currency,
                reason=(reason or "")[:300],
            )
            raised = (
                Conversion.objects.for_merchant(merchant)
                .filter(pk=conversion.pk, refunded_amount__lte=F("amount") - amount)
                .update(
                    refunded_amount=F("refunded_amount") + amount,
                    program_refunded_amount=_program_refunded(conversion, amount),
                )
            )
            if not raised:
                conversion.refresh_from_db(fields=["refunded_amount"])
                remaining = conversion.amount - conversion.refunded_amount
                raise Unprocessable(
                    _("The refund is more than what remains of the order (%(remaining)s %(currency)s).")
                    % {"remaining": remaining, "currency": conversion.currency},
                    code="refund_exceeds_order",
                    fields={"amount": [_("At most %(remaining)s.") % {"remaining": remaining}]},
                )
    except IntegrityError:  # the same refund_id arrived concurrently
        existing = scope.filter(conversion=conversion, refund_id=refund_id).first()
        if existing is None:
            raise
        return _same_refund_or_conflict(existing, amount), False
    # The rewards it paid for are voided, pro-rated or clawed back by a worker.
    enqueue_on_commit("rewards.process_refund", merchant_id=merchant.pk, refund_id=refund.pk)
    return refund, True


def _program_refunded(conversion: Conversion, amount):
    """The UPDATE's new program_refunded_amount (reading the row as it is when updated, as concurrent refunds
    need): the same as refunded_amount for an order in the program's currency; for a converted one, the program
    amount less what the customer keeps, converted at the order's rate and rounded half-up as its amount was
    (PostgreSQL's round() of a positive number)."""
    if conversion.program_amount is None:
        return Value(0)
    if conversion.exchange_rate is None:
        return F("program_refunded_amount") + amount
    kept = (F("amount") - F("refunded_amount") - amount) * F("exchange_rate")
    return F("program_amount") - Round(kept, precision=currency_decimals(conversion.program_currency))


def _same_refund_or_conflict(existing: Refund, amount) -> Refund:
    if existing.amount != amount:
        raise Unprocessable(
            _("This refund_id was already used with another amount (%(amount)s).") % {"amount": existing.amount},
            code="refund_id_reused",
        )
    return existing


# --- rejecting a referral after the fact (fraud review) ---------------------------------------------------------


@transaction.atomic
def referral_reject(*, referral: Referral, reason: str) -> Referral:
    """Reject a referral after it was opened (fraud, the merchant's call): it becomes rejected with `reason`, and
    its attributed orders become rejected with the same reason. A referral rejected already keeps its first
    reason (its orders still attributed are rejected with it). Safe to repeat."""
    if reason not in Referral.Reason.values:
        raise ValidationFailed(fields={"reason": [_("Unknown rejection reason.")]})
    locked = Referral.objects.for_merchant(referral.merchant_id).select_for_update().get(pk=referral.pk)
    if locked.status != Referral.Status.REJECTED:
        locked.status, locked.rejection_reason = Referral.Status.REJECTED, reason
        locked.save(update_fields=["status", "rejection_reason"])
    Conversion.objects.for_merchant(referral.merchant_id).filter(
        referral_id=locked.pk, status=Conversion.Status.ATTRIBUTED
    ).update(status=Conversion.Status.REJECTED, rejection_reason=locked.rejection_reason)
    return locked


@transaction.atomic
def referral_reinstate(
    *, referral: Referral, reason: str, conversion_ids: list[int] | tuple[int, ...] = ()
) -> Referral:
    """Undo referral_reject(reason) when a human overturns it: a referral rejected for `reason` is open again
    (converted if it converted, else signed up), and of its orders those named in `conversion_ids` and rejected for
    `reason` are attributed again (the referral is then converted). A referral rejected for another reason (e.g.
    self-referral) stays rejected, and so do its orders."""
    from django.utils import timezone

    locked = Referral.objects.for_merchant(referral.merchant_id).select_for_update().get(pk=referral.pk)
    if locked.status == Referral.Status.REJECTED and locked.rejection_reason != reason:
        return locked
    reinstated = (
        Conversion.objects.for_merchant(referral.merchant_id)
        .filter(referral_id=locked.pk, pk__in=list(conversion_ids), status=Conversion.Status.REJECTED)
        .filter(rejection_reason=reason)
        .update(status=Conversion.Status.ATTRIBUTED, rejection_reason="")
    )
    if reinstated and locked.converted_at is None:
        locked.converted_at = timezone.now()
    if locked.status == Referral.Status.REJECTED or reinstated:
        converted = locked.converted_at is not None
        locked.status = Referral.Status.CONVERTED if converted else Referral.Status.SIGNED_UP
        locked.rejection_reason = ""
        locked.save(update_fields=["status", "rejection_reason", "converted_at"])
    return locked
