"""Emails about rewards, rendered in the person's language (html + text) and sent by a worker, once each."""

from __future__ import annotations

import contextlib
import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from programs.selectors import program_texts
from referral_saas.celery import enqueue_on_commit
from referral_saas.tenancy.models import Membership
from referral_saas.validators import single_line
from rewards.models import Notification

logger = logging.getLogger(__name__)
Kind = Notification.Kind

CUSTOMER_EMAILS = {
    Kind.FRIEND_PURCHASED: "rewards/emails/friend_purchased",
    Kind.REWARD_ISSUED: "rewards/emails/reward_issued",
    Kind.WELCOME_OFFER: "rewards/emails/welcome_offer",
}
OWNER_EMAILS = {
    Kind.BUDGET_SPENT: "rewards/emails/budget_spent",
    Kind.POOL_EMPTY: "rewards/emails/pool_empty",
}


def _subject(kind: str, context: dict) -> str:
    subjects = {
        Kind.FRIEND_PURCHASED: _("Your friend just bought at %(shop)s"),
        Kind.REWARD_ISSUED: _("Your reward from %(shop)s is ready"),
        Kind.WELCOME_OFFER: _("Your welcome gift from %(shop)s"),
        Kind.BUDGET_SPENT: _("The budget of %(program)s is spent: rewards have stopped"),
        Kind.POOL_EMPTY: _("A coupon pool of %(program)s is empty"),
    }
    # single_line: a name saved before names had to be one line must not make the email a BadHeaderError.
    return single_line(subjects[kind] % {"shop": context["merchant"].name, "program": context["program"].name})


# Tries before an email is given up on (the task's retries and the sweeper's both count).
MAX_ATTEMPTS = 8


def notification_send(*, merchant, notification_id: int) -> bool:
    """Send one owed email (the row is locked, so two workers never both send it). True if sent now.

    A failure is written on the row: a refused address is given up on at once; anything else (the mail server is
    down, a timeout) is raised again for the task to retry, until MAX_ATTEMPTS."""
    failure: Exception | None = None
    with transaction.atomic():
        note = (
            Notification.objects.for_merchant(merchant)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant", "participant", "reward__program", "reward__participant", "program")
            .filter(pk=notification_id, sent_at__isnull=True, failed_at__isnull=True)
            .first()
        )
        if note is None:
            return False
        message = _render(note)
        try:
            if message is not None:
                message.send()
        except OSError as exc:  # smtplib's errors, a refused connection, a timeout
            failure = exc
            _record_failure(note, exc)
        else:
            note.sent_at = timezone.now()
            note.save(update_fields=["sent_at"])
    if failure is not None and note.failed_at is None:
        raise failure  # the task retries
    return failure is None and message is not None


def notifications_send_many(*, merchant, notification_ids: list[int]) -> tuple[int, list[int]]:
    """Send a batch's owed emails (rewards.send_notifications) as notification_send sends one, but together: the
    rows are locked in one query (one another worker holds is left to it), each program's texts are read once per
    language, every message goes over one connection to the mail server, and the sent rows are marked in one UPDATE.
    A failure is written on its row as notification_send writes it. Returns (emails sent, ids to try again one by
    one: the transient failures not given up on)."""
    retry: list[int] = []
    with transaction.atomic():
        notes = list(
            Notification.objects.for_merchant(merchant)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("merchant", "participant", "reward__program", "reward__participant", "program")
            .filter(pk__in=notification_ids, sent_at__isnull=True, failed_at__isnull=True)
            .order_by("pk")
        )
        if not notes:
            return 0, []
        texts: dict[tuple[int, str], dict[str, str]] = {}
        rendered = [(note, _render(note, texts=texts)) for note in notes]
        settled = [note.pk for note, message in rendered if message is None]  # nobody to write to
        sent: list[int] = []
        connection = get_connection()
        try:
            connection.open()
        except OSError as exc:  # the mail server does not answer: every email of the batch waits for a retry
            for note, message in rendered:
                if message is not None:
                    _record_failure(note, exc)
                    retry += [note.pk] if note.failed_at is None else []
        else:
            try:
                for note, message in rendered:
                    if message is None:
                        continue
                    message.connection = connection
                    try:
                        message.send()
                    except OSError as exc:
                        _record_failure(note, exc)
                        retry += [note.pk] if note.failed_at is None else []
                    else:
                        sent.append(note.pk)
            finally:
                with contextlib.suppress(OSError):
                    connection.close()
        if sent or settled:
            Notification.objects.for_merchant(merchant).filter(pk__in=sent + settled).update(sent_at=timezone.now())
    return len(sent), retry


def _record_failure(note: Notification, exc: Exception) -> None:
    note.attempts += 1
    note.last_error = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, smtplib.SMTPRecipientsRefused) or note.attempts >= MAX_ATTEMPTS:
        note.failed_at = timezone.now()
    note.save(update_fields=["attempts", "last_error", "failed_at"])
    logger.warning(
        "notification_failed",
        extra={
            "notification_id": note.pk,
            "kind": note.kind,
            "attempts": note.attempts,
            "error": note.last_error,
            "given_up": note.failed_at is not None,
        },
    )


def _texts(program, language: str, read: dict | None) -> dict[str, str]:
    if read is None:
        return program_texts(program=program, language=language)
    key = (program.pk, language)
    if key not in read:
        read[key] = program_texts(program=program, language=language)
    return read[key]


def _portal_url(merchant, program) -> str:
    return f"{settings.SITE_URL}/p/{merchant.slug}/{program.slug}/"


def _render(note: Notification, *, texts: dict | None = None) -> EmailMultiAlternatives | None:
    """The email a notification owes (None: nobody to write to). `texts`: program texts already read, by
    (program id, language), filled as they are read (a batch reads each once)."""
    merchant = note.merchant
    reward = note.reward
    program = note.program or (reward.program if reward else None)
    context = {"merchant": merchant, "program": program, "reward": reward, "portal_url": _portal_url(merchant, program)}
    if note.kind in CUSTOMER_EMAILS:
        participant = note.participant
        if participant is None or not participant.email or participant.status != participant.Status.ACTIVE:
            return None  # nobody to write to (no email, blocked or erased): the debt is settled as "nothing to send"

        language = participant.language
        context.update(
            participant=participant,
            name=(participant.name or "").split(" ")[0],
            texts=_texts(program, language, texts),
        )
        to, template = [participant.email], CUSTOMER_EMAILS[note.kind]
    else:
        language = "en"
        to = list(
            Membership.objects.for_merchant(merchant)
            .filter(role=Membership.Role.OWNER)
            .values_list("user__email", flat=True)
        )
        context["admin_url"] = f"{settings.SITE_URL}/admin/"
        template = OWNER_EMAILS[note.kind]
        if not to:
            return None
    with translation.override(language):
        context["reward_what"] = render_to_string("rewards/_what.txt", context).strip() if reward else ""
        message = EmailMultiAlternatives(
            subject=_subject(note.kind, context), body=render_to_string(f"{template}.txt", context), to=to
        )
        message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def notification_owe(kind: str, *, key: str, participant=None, reward=None, program=None) -> None:
    """Owe an email, once per (kind, key); a worker sends it after commit (the sweeper if that message is lost)."""
    merchant = (participant or reward or program).merchant
    try:
        with transaction.atomic():
            note = Notification.objects.for_merchant(merchant).create(
                kind=kind, key=key, participant=participant, reward=reward, program=program
            )
    except IntegrityError:
        return
    enqueue_on_commit("rewards.send_notification", merchant_id=merchant.pk, notification_id=note.pk)
