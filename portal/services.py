"""The referrer portal's writes: one-time sign-in links, shop-signed sign-in, invites to friends, shares."""

from __future__ import annotations

import hashlib
import hmac
import time
import zoneinfo
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from programs.identity import normalize_email, validate_customer_email
from programs.models import Invite, Participant, Program, ShareEvent
from programs.selectors import program_texts
from referral_saas import ratelimit
from referral_saas.celery import app as celery_app
from referral_saas.crypto import same_secret
from referral_saas.errors import PermissionDeniedError, Unprocessable, ValidationFailed
from referral_saas.fields import is_valid_key
from referral_saas.tenancy.models import Membership
from referral_saas.validators import single_line
from rewards.offers import offers_for
from tracking.models import Referral, ReferralCode
from tracking.selectors import code_check, link_for
from tracking.services import participant_join, referral_record_signup

LINK_SALT = "portal-sign-in"
LINK_MAX_AGE = 30 * 60
SSO_MAX_AGE = 10 * 60
INVITES_PER_SEND = 10
INVITES_PER_DAY = 50
# portal.tasks.send_invites, enqueued by name (the task module imports this one). The name predates the portal app.
SEND_INVITES_TASK = "programs.send_invites"


def portal_url(program: Program, name: str = "portal_home", language: str | None = None, **kwargs) -> str:
    with translation.override(language or translation.get_language() or program.default_language):
        path = reverse(name, kwargs={"merchant": program.merchant.slug, "program": program.slug, **kwargs})
    return settings.SITE_URL + path


# --- one-time sign-in link --------------------------------------------------------------------------------------


def portal_link_make(*, program: Program, email: str, name: str = "", consent: bool = False, language: str) -> str:
    payload = {"p": program.pk, "e": email, "n": name[:200], "c": bool(consent), "l": language, "t": time.time()}
    token = signing.dumps(payload, salt=LINK_SALT, compress=True)
    return portal_url(program, "portal_sign_in", language=language, token=token)


def portal_link_send(*, program: Program, email: str, name: str, consent: bool, language: str, ip: str) -> None:
    """Email a one-time sign-in link. Rate-limited per address and per IP; the answer never says whether the
    address is known."""
    email = (email or "").strip()
    if not normalize_email(email):
        raise ValidationFailed(fields={"email": [_("Enter a valid email address.")]})
    allowed_ip, _wait = ratelimit.hit(f"portal-link-ip:{ip}", limit=20, window_seconds=3600)
    allowed_email, _wait = ratelimit.hit(
        f"portal-link-email:{program.merchant_id}:{normalize_email(email)}", limit=5, window_seconds=3600
    )
    if not (allowed_ip and allowed_email):
        raise Unprocessable(_("Too many sign-in links were requested. Try again in an hour."), code="rate_limited")
    link = portal_link_make(program=program, email=email, name=name, consent=consent, language=language)
    program_name = program_texts(program=program, language=language)["name"]
    context = {"program_name": program_name, "merchant": program.merchant, "link": link, "minutes": LINK_MAX_AGE // 60}
    with translation.override(language):
        message = EmailMultiAlternatives(
            # single_line: a name saved before names had to be one line must not make the join a 500.
            subject=single_line(_("Your link to %(program)s") % {"program": program_name}),
            body=render_to_string("portal/emails/sign_in.txt", context),
            to=[email],
        )
        message.attach_alternative(render_to_string("portal/emails/sign_in.html", context), "text/html")
    message.send()


def portal_link_verify(
    *, program: Program, token: str, ip: str | None = None, user_agent: str = "", device_id: str = ""
) -> Participant:
    """Sign in from an emailed link: valid for 30 minutes, once. Signing in joins the program (participant_join,
    which remembers where from: `ip`, `user_agent`, `device_id`)."""
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise Unprocessable(_("This link has expired. Ask for a new one."), code="link_expired") from None
    except signing.BadSignature:
        raise Unprocessable(_("This link is not valid. Ask for a new one."), code="link_invalid") from None
    if payload.get("p") != program.pk:
        raise Unprocessable(_("This link is for another program."), code="link_invalid")
    used_key = "portal-link-used:" + hashlib.sha256(token.encode()).hexdigest()
    if not cache.add(used_key, 1, LINK_MAX_AGE * 2):
        raise Unprocessable(_("This link was already used. Ask for a new one."), code="link_used")
    participant, _code, _created = participant_join(
        merchant=program.merchant,
        livemode=True,
        program=program,
        email=payload["e"],
        name=payload.get("n") or None,
        language=payload.get("l"),
        marketing_consent=payload.get("c") or None,
        ip=ip,
        user_agent=user_agent,
        device_id=device_id,
    )
    return participant


# --- the shop signs the customer in -------------------------------------------------------------------------------


def _sso_signature(secret: str, program: Program, external_id: str, email: str, ts: str) -> str:
    """HMAC-SHA256 over "shop|program|customer id|email|timestamp" (no field may contain "|")."""
    message = "|".join([program.merchant.slug, program.slug, external_id, email, ts]).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def portal_sso_url(*, program: Program, external_id: str, email: str, ts: int | None = None) -> str:
    """The link a shop builds for a signed-in customer (documented in README; shown here for tests and the admin)."""
    ts_str = str(int(ts if ts is not None else time.time()))
    signature = _sso_signature(program.merchant.portal_secret, program, external_id, email, ts_str)
    query = urlencode({"participant": external_id, "email": email, "ts": ts_str, "sig": signature})
    return f"{portal_url(program, 'portal_sso')}?{query}"


def _sso_fields_valid(*, external_id: str, email: str) -> bool:
    if not is_valid_key(external_id):
        return False
    if email:
        try:
            validate_customer_email(email)
        except DjangoValidationError:
            return False
    return True


def portal_sso_verify(
    *,
    program: Program,
    external_id: str,
    email: str,
    ts: str,
    sig: str,
    ip: str | None = None,
    user_agent: str = "",
    device_id: str = "",
) -> Participant:
    """Sign in from the shop: HMAC-SHA256(portal secret, "shop|program|customer id|email|ts") in hex, at most
    10 minutes old, once. The customer id decides who signs in: an email that belongs to a participant with another
    customer id is refused.

    A correctly signed link is still input: the customer id must be one the API would take as an id (1-128
    characters, no control characters: referral_saas.fields.is_valid_key) and the email one a customer could give
    the shop (identity.validate_customer_email). Anything else is refused like a bad signature, before the link is
    marked as used and before anything is read or written. Signing in joins the program (participant_join, which
    remembers where from: `ip`, `user_agent`, `device_id`)."""
    # ts: ASCII digits only ("²".isdigit() is true, int() of it or of 5000 digits raises), a Unix time in seconds.
    if not (external_id and ts.isascii() and ts.isdigit() and len(ts) <= 12 and sig) or "|" in external_id + email:
        raise PermissionDeniedError(_("This sign-in link is incomplete."))
    expected = _sso_signature(program.merchant.portal_secret, program, external_id, email, ts)
    if not same_secret(expected, sig.lower()):  # a non-ASCII or odd-length sig is just a wrong one
        raise PermissionDeniedError(_("This sign-in link is not valid."))
    if abs(time.time() - int(ts)) > SSO_MAX_AGE:
        raise PermissionDeniedError(_("This sign-in link has expired. Go back to the shop and open it again."))
    # As the API takes them (its fields trim surrounding spaces); the signature covers the values as sent.
    external_id, email = external_id.strip(), email.strip()
    if not _sso_fields_valid(external_id=external_id, email=email):
        raise PermissionDeniedError(_("This sign-in link is not valid."))
    if not cache.add(f"portal-sso-used:{expected}", 1, SSO_MAX_AGE * 2 + 60):
        raise PermissionDeniedError(_("This sign-in link was already used. Go back to the shop and open it again."))
    by_email = (
        Participant.objects.for_merchant(program.merchant)
        .filter(livemode=True, email_normalized=normalize_email(email))
        .exclude(external_id=external_id)
        .exclude(external_id__isnull=True)
        .exists()
        if email
        else False
    )
    if by_email:
        raise PermissionDeniedError(_("This email belongs to another customer of the shop."))
    participant, _code, _created = participant_join(
        merchant=program.merchant,
        livemode=True,
        program=program,
        external_id=external_id,
        email=email or None,
        language=translation.get_language(),
        ip=ip,
        user_agent=user_agent,
        device_id=device_id,
    )
    return participant


# --- invites and shares ---------------------------------------------------------------------------------------------


def invites_send(*, participant: Participant, program: Program, emails: list[str], message: str) -> list[Invite]:
    """Queue invitation emails to friends: at most 10 at once and 50 a day, never to oneself, each friend once.
    Each address must be one a customer could give the shop (identity.validate_customer_email: no display name, no
    IP literal, not too long); "oneself" and "once" compare the normalised form, so Anna.K@Gmail.com,
    annak@gmail.com and anna.k+x@gmail.com are one friend, in one submission and across submissions. The mail goes
    to the address as typed (the first spelling). A program that is not running today invites nobody."""
    if not program.is_live():
        raise Unprocessable(_("This program is not running at the moment."), code="program_inactive")
    yourself = {participant.email_normalized, normalize_email(participant.email)} - {None}
    wanted: dict[str, str] = {}  # normalised -> as typed
    for raw in emails:
        email = raw.strip()
        try:
            validate_customer_email(email)
        except DjangoValidationError:
            shown = email if len(email) <= 80 else email[:77] + "..."
            raise ValidationFailed(
                fields={"emails": [_("%(email)s is not an email address.") % {"email": shown}]}
            ) from None
        normalized = normalize_email(email)
        if normalized in yourself:
            raise ValidationFailed(fields={"emails": [_("You cannot invite yourself.")]})
        wanted.setdefault(normalized, email)
    if not wanted:
        raise ValidationFailed(fields={"emails": [_("Enter at least one email address.")]})
    if len(wanted) > INVITES_PER_SEND:
        message = ngettext("At most %(n)d address at a time.", "At most %(n)d addresses at a time.", INVITES_PER_SEND)
        raise ValidationFailed(fields={"emails": [message % {"n": INVITES_PER_SEND}]})
    scope = Invite.objects.for_merchant(participant.merchant)
    today = timezone.now() - timedelta(hours=24)
    with transaction.atomic():
        # One participant's invites are serialised, so that the daily cap holds under double-clicks.
        Participant.objects.for_merchant(participant.merchant).select_for_update().filter(pk=participant.pk).first()
        sent_today = scope.filter(participant=participant, created_at__gte=today).count()
        if sent_today + len(wanted) > INVITES_PER_DAY:
            left = max(INVITES_PER_DAY - sent_today, 0)
            message = ngettext(
                "You can invite %(n)d more friend today.", "You can invite %(n)d more friends today.", left
            )
            raise Unprocessable(message % {"n": left}, code="daily_invite_cap")
        created = []
        for normalized, email in wanted.items():
            try:
                with transaction.atomic():
                    created.append(
                        scope.create(
                            program=program,
                            participant=participant,
                            email=email,
                            email_normalized=normalized,
                            message=(message or "")[:500],
                            language=translation.get_language() or participant.language,
                        )
                    )
            except IntegrityError:
                continue  # this friend was invited before: not again
        ids = [invite.pk for invite in created]
        if ids:
            transaction.on_commit(
                lambda: celery_app.send_task(
                    SEND_INVITES_TASK, kwargs={"merchant_id": participant.merchant_id, "invite_ids": ids}
                )
            )
    return created


def _friend_offer(*, invite: Invite, code: ReferralCode | None) -> str:
    """The friend's offer as the shop's code check shows it (the referrer's A/B variant's, else the program's), in
    the invite's language."""
    variant = code.variant if code is not None else None
    return offers_for(program=invite.program, variant=variant, language=invite.language)["referee_offer"]


def invite_deliver(*, invite: Invite) -> None:
    """Render the invitation in the language it was written in and send it (called by the Celery task)."""
    if invite.status == Invite.Status.SENT:
        return
    code = (
        ReferralCode.objects.for_merchant(invite.merchant)
        .filter(program=invite.program, participant=invite.participant)
        .select_related("variant")
        .first()
    )
    context = {
        "program": invite.program,
        "merchant": invite.merchant,
        "referrer_name": invite.participant.first_name_initial,
        "message": invite.message,
        "link": link_for(code.code) if code else invite.program.landing_url,
        "offer": _friend_offer(invite=invite, code=code),
    }
    with translation.override(invite.language):
        email = EmailMultiAlternatives(
            subject=single_line(
                _("%(name)s invites you to %(shop)s") % {"name": context["referrer_name"], "shop": invite.merchant.name}
            ),
            body=render_to_string("portal/emails/invite.txt", context),
            to=[invite.email],
        )
        email.attach_alternative(render_to_string("portal/emails/invite.html", context), "text/html")
    email.send()
    Invite.objects.for_merchant(invite.merchant).filter(pk=invite.pk).update(
        status=Invite.Status.SENT, sent_at=timezone.now()
    )


def share_record(*, participant: Participant, program: Program, channel: str) -> None:
    """Count a share of the participant's link in `program` on `channel`: once per participant, program, channel
    and day (the merchant's). A repeat that day (a reload, a double click, a retry) is ignored by the unique
    constraint, not by a prior read, so concurrent repeats count once too."""
    if channel not in ShareEvent.Channel.values:
        raise ValidationFailed(fields={"channel": [_("Unknown channel.")]})
    merchant = participant.merchant
    now = timezone.now()
    share = ShareEvent(
        merchant=merchant,
        program=program,
        participant=participant,
        channel=channel,
        created_at=now,
        day=now.astimezone(zoneinfo.ZoneInfo(merchant.timezone)).date(),
    )
    ShareEvent.objects.for_merchant(merchant).bulk_create([share], ignore_conflicts=True)


# --- the friend's welcome page --------------------------------------------------------------------------------------

WELCOME_LIMIT_PER_IP = 10  # sign-ups an hour from one address: a household, not a farm of coupons


def welcome_code(*, program: Program, code: str) -> ReferralCode | None:
    """The referral code a welcome page names, if it is this program's and can still bring a friend (either mode:
    codes are unique per merchant)."""
    for livemode in (True, False):
        check = code_check(merchant=program.merchant, livemode=livemode, code=code)
        if check is not None:
            return check.code if check.valid and check.program.pk == program.pk else None
    return None


def welcome_signup(*, program: Program, code: ReferralCode, click_id: str, email: str, ip: str) -> Referral:
    """A referred friend left their email on the program's welcome page: their sign-up, through the same service as
    the shop's POST /api/v1/referrals (attribution window, self-referral, first or last touch), so that a worker
    scores it and pays the friend's sign-up rules (the coupon the page then reveals and the welcome email sends).
    The same friend again gets the same referral (and gift), never a second one; an address may sign up
    WELCOME_LIMIT_PER_IP friends an hour."""
    email = (email or "").strip()
    try:
        validate_customer_email(email)
    except DjangoValidationError:
        raise ValidationFailed(fields={"email": [_("Enter a valid email address.")]}) from None
    allowed, _wait = ratelimit.hit(f"portal-welcome-ip:{program.merchant_id}:{ip}", limit=WELCOME_LIMIT_PER_IP,
                                   window_seconds=3600)  # fmt: skip
    if not allowed:
        raise Unprocessable(_("Too many sign-ups from this network. Try again in an hour."), code="rate_limited")
    click = click_id if is_valid_key(click_id or "") else None
    try:
        referral, _created = referral_record_signup(
            merchant=program.merchant, livemode=code.livemode, customer_external_id=None, customer_email=email,
            code=None if click else code.code, click_id=click,
        )  # fmt: skip
    except Unprocessable as exc:
        if exc.code != "unknown_click":
            raise
        referral, _created = referral_record_signup(
            merchant=program.merchant, livemode=code.livemode, customer_external_id=None, customer_email=email,
            code=code.code,
        )  # fmt: skip
    return referral


def staff_may_test(*, user, merchant) -> bool:
    """A signed-in member of the merchant's staff who may change its setup (owner or admin): who may open the
    portal as the program's test referrer."""
    if not getattr(user, "is_authenticated", False):
        return False
    membership = Membership.objects.for_merchant(merchant).filter(user=user).first()
    return membership is not None and membership.can_write
