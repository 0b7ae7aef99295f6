"""Writes for programs and participants."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from programs.identity import EMAIL_MAX_LENGTH, normalize_email
from programs.models import Participant, Program, ProgramText, ProgramVariant
from programs.selectors import _public_names_key
from programs.signals import participant_erased, participant_status_changed, program_changed, program_duplicated
from referral_saas.errors import Conflict, NotFound, Unprocessable, ValidationFailed
from referral_saas.tenancy.models import Merchant
from referral_saas.validators import require_single_line
from referral_saas.webhooks.services import (
    PARTICIPANT_ERASED,
    consent_given_tell,
    domain_events_tell,
    messages_redact,
)


@transaction.atomic
def program_duplicate(*, program: Program) -> Program:
    """A draft copy of a program under a free slug, with everything that defines it.

    Copied here: variants and texts in other languages; by the apps that hold them (programs.signals.
    program_duplicated): reward rules (each for the copied variant), the points catalog and the fraud rules. Coupon
    pools are copied empty (a code is single-use, so the copy gets its own codes); participants, codes, referrals and
    rewards stay with the original. Two copies made at once race for the same free slug: the loser's insert fails on
    the slug constraint inside a savepoint and it takes the next number, so both get a copy and neither gets a 500.
    """
    merchant = program.merchant
    base = f"{program.slug}-copy"[:55]
    scope = Program.objects.for_merchant(merchant)
    copy = scope.get(pk=program.pk)
    copy.pk = None
    copy.name, copy.status, copy.created_at = f"{program.name} (copy)", Program.Status.DRAFT, timezone.now()
    n = 1
    for _attempt in range(_DUPLICATE_ATTEMPTS):
        while scope.filter(slug=base if n == 1 else f"{base}-{n}").exists():
            n += 1
        copy.slug = base if n == 1 else f"{base}-{n}"
        try:
            with transaction.atomic():
                copy.save(force_insert=True)
            break
        except IntegrityError:
            if not scope.filter(slug=copy.slug).exists():
                raise
            copy.pk, n = None, n + 1
    else:
        raise Conflict(_("Too many copies of this program are being made at once; try again."))

    variants = program_rows_copy(model=ProgramVariant, program=program, copy=copy)
    program_rows_copy(model=ProgramText, program=program, copy=copy)
    program_duplicated.send(sender=Program, program=program, copy=copy, variants=variants)
    return copy


def program_rows_copy(*, model, program: Program, copy: Program, **remap: dict) -> dict:
    """New rows of `model` for `copy`, one per row of `program` (in pk order, created now). `remap` names a foreign
    key whose target was copied too: {"pool": {original pk: its copy}}. Returns {original pk: its copy}."""
    copied = {}
    for row in model.objects.for_merchant(program.merchant_id).filter(program=program).order_by("pk"):
        original_pk = row.pk
        row.pk = None
        row.program = copy
        for name, copies in remap.items():
            setattr(row, name, copies.get(getattr(row, f"{name}_id")))
        if hasattr(row, "created_at"):
            row.created_at = timezone.now()
        row.save(force_insert=True)
        copied[original_pk] = row
    return copied


_DUPLICATE_ATTEMPTS = 20


def _status_move(*, program: Program, current: str, status: str) -> None:
    """Set `status` on `program` (in memory), coming from `current`: an ended program stays ended, and ending
    stamps `ends_on` (today, or the start date if that is later) unless the program already ended earlier."""
    if status not in Program.Status.values:
        raise ValidationFailed(fields={"status": [_("Unknown status.")]})
    if current == Program.Status.ENDED and status != Program.Status.ENDED:
        message = _("An ended program cannot be restarted; duplicate it instead.")
        raise Unprocessable(message, fields={"status": [message]})
    program.status = status
    if status == Program.Status.ENDED and (program.ends_on is None or program.ends_on > timezone.localdate()):
        program.ends_on = max(timezone.localdate(), program.starts_on)


def program_set_status(*, program: Program, status: str) -> Program:
    """Activate, pause or end a program. An ended program stays ended (duplicate it to run again)."""
    _status_move(program=program, current=program.status, status=status)
    program.save(update_fields=["status", "ends_on"])
    program_changed.send(sender=Program, program=program)
    return program


@transaction.atomic
def program_create(*, merchant: Merchant, program: Program) -> Program:
    """Store a new program of `merchant` (the admin's add form builds it). Its status goes by the same rule as a
    change: one created ended gets its `ends_on` stamped, so it is ended for the redirect and the portal as well."""
    program.merchant = merchant
    status, program.status = program.status, Program.Status.DRAFT
    _status_move(program=program, current=Program.Status.DRAFT, status=status)
    program.save(force_insert=True)
    return program


def program_update(*, program: Program, status: str) -> Program:
    """Save a program edited as a whole (the admin's change form holds every field, `status` among them).

    The status moves by program_set_status's rule, judged against the stored status (read under a lock, so that an
    "end" running now is not undone): an ended program cannot be made active, paused or draft again (422 on
    `status`, nothing saved), and ending stamps `ends_on`. What the redirect caches about the program is dropped.
    """
    stored = Program.objects.for_merchant(program.merchant_id).select_for_update().filter(pk=program.pk).first()
    if stored is None:
        raise NotFound(_("No such program."))
    _status_move(program=program, current=stored.status, status=status)
    program.save()
    program_changed.send(sender=Program, program=program)
    return program


def _find_participant(*, merchant: Merchant, livemode: bool, external_id: str | None, email_normalized: str | None):
    scope = Participant.objects.for_merchant(merchant).filter(livemode=livemode)
    if external_id:
        found = scope.filter(external_id=external_id).first()
        if found is not None:
            return found
    if email_normalized:
        return scope.filter(email_normalized=email_normalized).first()
    return None


def participant_find_or_create(
    *,
    merchant: Merchant,
    livemode: bool,
    program: Program,
    external_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    language: str | None = None,
    marketing_consent: bool | None = None,
) -> tuple[Participant, bool]:
    """The participant joining `program`: found by external id, else by normalised email, else created (in the
    program's language unless one is given); the details given fill in or update theirs. An ended program takes no
    one (422 program_ended); an erased participant stays erased (404). Their code is tracking's
    (tracking.services.participant_upsert, the service every door calls). Returns (participant, created)."""
    external_id = (external_id or "").strip() or None
    email = (email or "").strip() or None
    email_normalized = normalize_email(email)
    if email and max(len(email), len(email_normalized)) > EMAIL_MAX_LENGTH:
        # Every door checks addresses (programs.fields); this keeps any other caller from a database error.
        raise ValidationFailed(fields={"email": [_("Enter a valid email address.")]})
    if not external_id and not email_normalized:
        raise ValidationFailed(fields={"external_id": [_("Give an external_id or an email.")]})
    require_single_line(name=name)  # the API, the portal and the shop's sign-in link all come through here
    if program.status == Program.Status.ENDED:
        raise Unprocessable(_("This program has ended."), code="program_ended")

    # No savepoint of its own inside the caller's transaction (tracking's participant_upsert): a refusal below rolls
    # the whole join back anyway, and a join is on every order's path.
    with transaction.atomic(savepoint=False):
        participant = _find_participant(
            merchant=merchant, livemode=livemode, external_id=external_id, email_normalized=email_normalized
        )
        created = participant is None
        if participant is None:
            try:
                with transaction.atomic():
                    participant = Participant.objects.for_merchant(merchant).create(
                        livemode=livemode,
                        external_id=external_id,
                        email=email,
                        email_normalized=email_normalized,
                        name=(name or "").strip(),
                        language=language or program.default_language,
                        marketing_consent=bool(marketing_consent),
                    )
            except IntegrityError:  # a concurrent request created them first
                created = False
                participant = _find_participant(
                    merchant=merchant, livemode=livemode, external_id=external_id, email_normalized=email_normalized
                )
                if participant is None:
                    raise Conflict(_("This email belongs to a participant with another external_id.")) from None
        else:
            _update_participant(participant, external_id, email, email_normalized, name, language, marketing_consent)
        if participant.status == Participant.Status.ERASED:
            raise NotFound(_("This participant asked to be forgotten."))
    return participant, created


def _update_participant(participant, external_id, email, email_normalized, name, language, marketing_consent):
    changed = []
    if external_id and not participant.external_id:
        participant.external_id = external_id
        changed.append("external_id")
    if email_normalized and participant.email_normalized != email_normalized:
        if _taken(participant, email_normalized=email_normalized):
            raise Conflict(_("This email belongs to another participant."), fields={"email": ["taken"]})
        participant.email, participant.email_normalized = email, email_normalized
        changed += ["email", "email_normalized"]
    if name and name.strip() != participant.name:
        participant.name = name.strip()
        changed.append("name")
    if language and language != participant.language:
        participant.language = language
        changed.append("language")
    if marketing_consent is not None and marketing_consent != participant.marketing_consent:
        participant.marketing_consent = marketing_consent
        changed.append("marketing_consent")
    if changed:
        participant.save(update_fields=changed)
    if "name" in changed:
        public_names_changed(merchant_id=participant.merchant_id)
    if "marketing_consent" in changed and participant.marketing_consent:
        consent_given_tell(participant=participant)


def _taken(participant: Participant, **identity) -> bool:
    """Another participant of the same merchant and mode has this identity (email_normalized or external_id)."""
    scope = Participant.objects.for_merchant(participant.merchant_id).filter(livemode=participant.livemode)
    return scope.filter(**identity).exclude(pk=participant.pk).exists()


def participant_update(
    *,
    participant: Participant,
    name: str,
    email: str | None,
    external_id: str | None,
    language: str,
    marketing_consent: bool,
) -> Participant:
    """Staff edit a participant's details (the admin's form; the status moves through participant_set_status).

    The email is stored as typed with its compared form (identity.normalize_email), and neither the compared email
    nor the shop's customer id may be another participant's (409 on `email` / `external_id`: anna+x@outlook.com is
    anna@outlook.com's inbox). A participant keeps an email or a customer id (400); an erased one gets no personal
    data back (409 participant_erased). Checked here
    and again by the unique constraints, so a concurrent edit is refused the same way.
    """
    email = (email or "").strip() or None
    external_id = (external_id or "").strip() or None
    email_normalized = normalize_email(email)
    if email and max(len(email), len(email_normalized)) > EMAIL_MAX_LENGTH:
        raise ValidationFailed(fields={"email": [_("Enter a valid email address.")]})
    require_single_line(name=name)
    taken_email = _("This email belongs to another participant.")
    taken_id = _("This customer id belongs to another participant.")
    with transaction.atomic():
        stored = Participant.objects.for_merchant(participant.merchant_id).select_for_update().get(pk=participant.pk)
        if stored.status == Participant.Status.ERASED:
            if email or external_id or (name or "").strip():
                message = _("This participant's personal data was erased at their request; it stays erased.")
                raise Conflict(message, code="participant_erased")
        elif not (email_normalized or external_id):
            message = _("Give an email or a shop customer id.")
            raise ValidationFailed(fields={"email": [message]})
        if email_normalized and _taken(stored, email_normalized=email_normalized):
            raise Conflict(taken_email, code="email_taken", fields={"email": [taken_email]})
        if external_id and _taken(stored, external_id=external_id):
            raise Conflict(taken_id, code="external_id_taken", fields={"external_id": [taken_id]})
        values = {
            "name": (name or "").strip(),
            "email": email,
            "email_normalized": email_normalized,
            "external_id": external_id,
            "language": language,
            "marketing_consent": bool(marketing_consent),
        }
        changed = [field for field, value in values.items() if getattr(stored, field) != value]
        for field, value in values.items():
            setattr(stored, field, value)
            setattr(participant, field, value)
        if changed:
            try:
                with transaction.atomic():
                    stored.save(update_fields=changed)
            except IntegrityError:  # another edit or a join took the address or the id since the check
                if email_normalized and _taken(stored, email_normalized=email_normalized):
                    raise Conflict(taken_email, code="email_taken", fields={"email": [taken_email]}) from None
                raise Conflict(taken_id, code="external_id_taken", fields={"external_id": [taken_id]}) from None
        if "marketing_consent" in changed and stored.marketing_consent:
            consent_given_tell(participant=stored)
    if "name" in changed:
        public_names_changed(merchant_id=participant.merchant_id)
    return participant


def public_names_changed(*, merchant_id: int) -> None:
    """Public caches (the leaderboard) drop what they hold: now, and once the change is visible to their readers."""

    def bump():
        cache.set(_public_names_key(merchant_id), time.time_ns(), None)

    bump()
    transaction.on_commit(bump)


def participant_set_status(*, participant: Participant, status: str) -> Participant:
    """Block a participant (their links stop paying) or unblock them. An erased participant stays erased: their
    personal data is gone and a status change would bring back no one (409 participant_erased)."""
    if status not in (Participant.Status.ACTIVE, Participant.Status.BLOCKED):
        raise ValidationFailed(fields={"status": [_("Use active or blocked.")]})
    with transaction.atomic():
        # Locked, so that an erasure running now cannot be undone by this change.
        stored = Participant.objects.for_merchant(participant.merchant_id).select_for_update().get(pk=participant.pk)
        if stored.status == Participant.Status.ERASED:
            message = _("An erased participant cannot be blocked or unblocked.")
            raise Conflict(message, code="participant_erased", fields={"status": [message]})
        stored.status = participant.status = status
        stored.save(update_fields=["status"])
    participant_status_changed.send(sender=Participant, participant=participant)
    public_names_changed(merchant_id=participant.merchant_id)
    return participant


@transaction.atomic
def participant_erase(*, participant: Participant) -> Participant:
    """A privacy request: personal data goes, anonymous records stay so that totals stay right."""
    participant = Participant.objects.for_merchant(participant.merchant).select_for_update().get(pk=participant.pk)
    # Tools that received them (marketing syncs) are told whom to delete, by what identified them there.
    identity = {"id": participant.pk, "email": participant.email, "external_id": participant.external_id}
    domain_events_tell(merchant=participant.merchant, events=[(participant.livemode, PARTICIPANT_ERASED, identity)])
    # Stored events (retried, shown in the admin) stop naming them too.
    messages_redact(
        merchant_id=participant.merchant_id,
        identifiers=[participant.email, participant.external_id],
        values=[participant.email, participant.email_normalized, participant.external_id, participant.name],
    )
    participant.email = participant.email_normalized = participant.external_id = None
    participant.name = ""
    participant.marketing_consent = False
    participant.status = Participant.Status.ERASED
    participant.erased_at = timezone.now()
    participant.save()
    participant_erased.send(sender=Participant, participant=participant)
    public_names_changed(merchant_id=participant.merchant_id)
    return participant
