"""Writes for tenants, staff, API keys and invitations."""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from referral_saas.crypto import same_secret
from referral_saas.errors import NotFound, PermissionDeniedError, Unprocessable, ValidationFailed
from referral_saas.money import is_currency
from referral_saas.tenancy.models import ApiKey, Invitation, Membership, Merchant, User, validate_timezone
from referral_saas.validators import require_single_line, single_line

logger = logging.getLogger(__name__)

_KEY_ALPHABET = string.ascii_letters + string.digits
API_KEY_CACHE_SECONDS = 60  # revocation deletes the entry; suspension of a merchant takes effect within this
_NO_KEY = "none"
_last_used_written: dict[int, float] = {}  # api key pk -> when this process last wrote its last_used_at
API_KEY_SECRET_LENGTH = 40  # ~238 bits


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- merchants --------------------------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "shop"
    slug, n = base, 1
    while Merchant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def merchant_create(
    *,
    name: str,
    owner: User | None = None,
    owner_email: str | None = None,
    owner_password: str | None = None,
    default_currency: str = "USD",
    timezone_name: str = "UTC",
    default_language: str = "en",
    email_verified: bool = False,
) -> Merchant:
    """Create a merchant and make `owner` (or the user with `owner_email`, created if new) its owner."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(fields={"name": [_("A shop name is required.")]})
    require_single_line(name=name)
    if not is_currency(default_currency):
        raise ValidationFailed(fields={"default_currency": [_("Unknown currency code.")]})
    try:
        validate_timezone(timezone_name)
    except Exception as exc:
        raise ValidationFailed(fields={"timezone": [_("Unknown time zone.")]}) from exc

    if owner is None:
        if not owner_email:
            raise ValidationFailed(fields={"owner_email": [_("An owner email is required.")]})
        owner = User.objects.filter(email__iexact=owner_email).first()
        if owner is None:
            owner = User.objects.create_user(email=owner_email, password=owner_password)
            if owner_password is None:
                owner.set_unusable_password()
                owner.save(update_fields=["password"])
    if email_verified:
        _mark_email_verified(owner)

    for _attempt in range(5):
        try:
            with transaction.atomic():
                merchant = Merchant.objects.create(
                    name=name,
                    slug=_unique_slug(name),
                    default_currency=default_currency,
                    timezone=timezone_name,
                    default_language=default_language,
                )
            break
        except IntegrityError:  # two sign-ups raced for the same slug: pick the next one
            continue
    else:  # pragma: no cover - five collisions in a row
        raise Unprocessable(_("Could not allocate a unique shop address; try again."))
    Membership.objects.for_merchant(merchant).create(user=owner, role=Membership.Role.OWNER)
    return merchant


def merchant_set_status(*, merchant: Merchant, status: str) -> Merchant:
    """Suspend or reactivate a merchant (operators). Its API keys stop or start working at once."""
    if status not in Merchant.Status.values:
        raise ValidationFailed(fields={"status": [_("Unknown status.")]})
    merchant.status = status
    merchant.save(update_fields=["status"])
    for api_key in ApiKey.objects.for_merchant(merchant):
        if status == Merchant.Status.ACTIVE:
            apikey_cache_forget(api_key=api_key)
        else:
            apikey_cache_refuse(api_key=api_key)
    return merchant


def _mark_email_verified(user: User) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})


# --- API keys ---------------------------------------------------------------------------------------------------


def apikey_create(*, merchant: Merchant, name: str, mode: str = ApiKey.Mode.LIVE, created_by: User | None = None):
    """Make a key and return (ApiKey, plaintext). The plaintext exists only in this return value."""
    if mode not in ApiKey.Mode.values:
        raise ValidationFailed(fields={"mode": [_("Mode must be live or test.")]})
    require_single_line(name=name)
    prefix = f"rk_{mode}_"
    secret = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(API_KEY_SECRET_LENGTH))
    plaintext = prefix + secret
    api_key = ApiKey.objects.for_merchant(merchant).create(
        name=(name or "").strip() or _("API key"),
        mode=mode,
        prefix=prefix,
        key_hash=_sha256(plaintext),
        last4=plaintext[-4:],
        created_by=created_by,
    )
    return api_key, plaintext


def apikey_revoke(*, merchant: Merchant, api_key_id: int) -> ApiKey:
    updated = ApiKey.objects.for_merchant(merchant).filter(pk=api_key_id, revoked_at__isnull=True)
    updated.update(revoked_at=timezone.now())
    try:
        api_key = ApiKey.objects.for_merchant(merchant).get(pk=api_key_id)
    except ApiKey.DoesNotExist as exc:
        raise NotFound(_("No such API key.")) from exc
    apikey_cache_refuse(api_key=api_key)
    return api_key


def apikey_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key whose hash matches, else None.

    Missing prefix, unknown, revoked: all take the same path (hash, one cache read, at most one indexed lookup), so
    the response time does not tell which part was wrong. Revoking writes a tombstone into the cache and a reader
    only ever *adds* to it, so a revoked key is refused at once and cannot be cached back as valid.
    `last_used_at` is written at most once a minute per key and process.
    """
    digest = _sha256(raw_key or "")
    cache_key = _apikey_cache_key(digest)
    try:
        api_key = cache.get(cache_key)
    except Exception:  # Redis down: authenticate from PostgreSQL
        api_key = None
    if api_key is None:
        api_key = (
            ApiKey.all_merchants.select_related("merchant").filter(key_hash=digest, revoked_at__isnull=True).first()
        )
        _cache_add(cache_key, api_key or _NO_KEY)
    if api_key == _NO_KEY or api_key is None or not same_secret(api_key.key_hash, digest):
        return None
    now = timezone.now()
    written = _last_used_written.get(api_key.pk)
    if written is None or time.monotonic() - written > settings.API_KEY_LAST_USED_RESOLUTION_SECONDS:
        _last_used_written[api_key.pk] = time.monotonic()
        stale = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
        ApiKey.all_merchants.filter(pk=api_key.pk, revoked_at__isnull=True).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
    return api_key


# --- team -------------------------------------------------------------------------------------------------------


def _owner_count(merchant: Merchant) -> int:
    return Membership.objects.for_merchant(merchant).filter(role=Membership.Role.OWNER).count()


def membership_role_change_check(*, membership: Membership, role: str, actor: Membership) -> None:
    """The rules for changing a teammate's role: only owners grant or take away ownership; a shop keeps an owner."""
    if not actor.can_write:
        raise PermissionDeniedError(_("Analysts cannot change the team."))
    if Membership.Role.OWNER in (role, membership.role) and actor.role != Membership.Role.OWNER:
        raise PermissionDeniedError(_("Only an owner can grant or remove the owner role."))
    if (
        membership.role == Membership.Role.OWNER
        and role != Membership.Role.OWNER
        and _owner_count(membership.merchant) <= 1
    ):
        raise Unprocessable(_("A shop needs at least one owner: make someone else owner first."))


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, actor: Membership) -> Membership:
    # Lock the merchant's owner rows so two concurrent demotions cannot leave the shop without an owner.
    list(Membership.objects.for_merchant(membership.merchant).filter(role=Membership.Role.OWNER).select_for_update())
    membership_role_change_check(membership=membership, role=role, actor=actor)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def membership_remove_check(*, membership: Membership, actor: Membership) -> None:
    if not actor.can_write:
        raise PermissionDeniedError(_("Analysts cannot change the team."))
    if membership.role == Membership.Role.OWNER:
        if actor.role != Membership.Role.OWNER:
            raise PermissionDeniedError(_("Only an owner can remove an owner."))
        if _owner_count(membership.merchant) <= 1:
            raise Unprocessable(_("A shop needs at least one owner: you cannot remove the last one."))


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Membership) -> None:
    list(Membership.objects.for_merchant(membership.merchant).filter(role=Membership.Role.OWNER).select_for_update())
    membership_remove_check(membership=membership, actor=actor)
    membership.delete()


def _pending_invitation(merchant: Merchant, email: str) -> Invitation | None:
    return Invitation.objects.for_merchant(merchant).filter(email__iexact=email, accepted_at__isnull=True).first()


def _is_owner(merchant: Merchant, user: User) -> bool:
    return Membership.objects.for_merchant(merchant).filter(user=user, role=Membership.Role.OWNER).exists()


def invitation_create_check(
    *, merchant: Merchant, email: str, role: str, invited_by: User | None, pending: Invitation | None = None
) -> None:
    """Who may invite whom, by the same rule as a role change: analysts invite nobody, and only an owner grants
    ownership, so only an owner invites an owner or renews (re-sends, re-invites with another role) a pending owner
    invitation. `invited_by` None is the platform itself (commands, operators); someone not on the team invites
    nobody."""
    if role not in Membership.Role.values:
        raise ValidationFailed(fields={"role": [_("Unknown role.")]})
    if invited_by is None:
        return
    actor = Membership.objects.for_merchant(merchant).filter(user=invited_by).first()
    if actor is None or not actor.can_write:
        raise PermissionDeniedError(_("Only owners and admins can invite teammates."))
    if pending is None:
        pending = _pending_invitation(merchant, (email or "").strip().lower())
    pending_role = pending.role if pending else None
    if Membership.Role.OWNER in (role, pending_role) and actor.role != Membership.Role.OWNER:
        raise PermissionDeniedError(
            _("Only an owner can invite an owner, or re-send or change an invitation to be an owner."),
            fields={"role": [_("Only an owner can grant the owner role.")]},
        )


def invitation_create(*, merchant: Merchant, email: str, role: str, invited_by: User | None) -> Invitation:
    """Invite `email` with `role`. A second invite to the same address renews and re-sends the pending one.
    The rules of `invitation_create_check` apply to every invite, re-invite and re-send."""
    email = (email or "").strip().lower()
    invitation_create_check(merchant=merchant, email=email, role=role, invited_by=invited_by)
    if Membership.objects.for_merchant(merchant).filter(user__email__iexact=email).exists():
        raise Unprocessable(_("%(email)s is already on the team.") % {"email": email}, fields={"email": ["exists"]})
    token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS)
    with transaction.atomic():
        pending = (
            Invitation.objects.for_merchant(merchant)
            .select_for_update()
            .filter(email__iexact=email, accepted_at__isnull=True)
            .first()
        )
        # Again under the row lock: the pending invitation may have become an owner's since the first check.
        invitation_create_check(merchant=merchant, email=email, role=role, invited_by=invited_by, pending=pending)
        if pending:
            pending.role, pending.token_hash, pending.expires_at = role, _sha256(token), expires_at
            pending.invited_by = invited_by
            pending.save(update_fields=["role", "token_hash", "expires_at", "invited_by"])
            invitation = pending
        else:
            invitation = Invitation.objects.for_merchant(merchant).create(
                email=email,
                role=role,
                token_hash=_sha256(token),
                invited_by=invited_by,
                expires_at=expires_at,
            )
        transaction.on_commit(lambda: _send_invitation_email(invitation, token))
    return invitation


def _send_invitation_email(invitation: Invitation, token: str) -> None:
    context = {
        "merchant": invitation.merchant,
        "role": invitation.get_role_display(),
        "inviter": invitation.invited_by,
        "url": settings.SITE_URL + reverse("invitation_accept", args=[token]),
        "expires_at": invitation.expires_at,
    }
    # single_line: a shop name saved before names had to be one line must not make the email a BadHeaderError.
    subject = single_line(
        _("You are invited to join %(merchant)s on Referral SaaS") % {"merchant": invitation.merchant.name}
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/team_invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/team_invitation.html", context), "text/html")
    message.send()


def invitation_find(*, token: str) -> Invitation | None:
    """The invitation behind a token from an email link (any merchant: the token is the credential)."""
    return Invitation.all_merchants.select_related("merchant", "invited_by").filter(token_hash=_sha256(token)).first()


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the team. The signed-in user's email must be the invited one; accepting twice is harmless. A used
    invitation only leads back to a membership that still exists: someone removed from the team can't rejoin with
    their old link (they need a new invitation)."""
    invitation = invitation_find(token=token)
    if invitation is None:
        raise NotFound(_("This invitation link is not valid."))
    invitation = Invitation.all_merchants.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is None and invitation.expires_at <= timezone.now():
        raise Unprocessable(_("This invitation has expired; ask for a new one."), code="invitation_expired")
    if invitation.email.lower() != user.email.lower():
        raise PermissionDeniedError(
            _("This invitation was sent to %(email)s; sign in with that address.") % {"email": invitation.email}
        )
    memberships = Membership.objects.for_merchant(invitation.merchant)
    if (
        invitation.accepted_at is None
        and invitation.role == Membership.Role.OWNER
        and invitation.invited_by is not None
        and not _is_owner(invitation.merchant, invitation.invited_by)
    ):
        # Sent before admins were stopped from inviting owners, or by an owner demoted since: ownership is granted
        # only by someone who is an owner now.
        raise PermissionDeniedError(
            _("This invitation to be an owner is no longer valid; ask an owner of the shop for a new one."),
            code="invitation_not_allowed",
        )
    if invitation.accepted_at is not None:
        membership = memberships.filter(user=user).first() if invitation.accepted_by_id == user.pk else None
        if membership is None:
            raise Unprocessable(
                _("This invitation was already used; ask the shop's owner for a new one."), code="invitation_used"
            )
        return membership
    membership, _created = memberships.get_or_create(user=user, defaults={"role": invitation.role})
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitations_purge_expired(*, older_than_days: int = 30) -> int:
    """Delete invitations that expired long ago and were never accepted (all merchants: a beat task)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _detail = Invitation.all_merchants.filter(accepted_at__isnull=True, expires_at__lt=cutoff).delete()
    return deleted


def _apikey_cache_key(digest: str) -> str:
    return f"apikey:{digest}"


def apikey_cache_forget(*, api_key: ApiKey) -> None:
    """The key may work again (a merchant reactivated): drop the cached answer, now and after commit."""

    def forget():
        try:
            cache.delete(_apikey_cache_key(api_key.key_hash))
        except Exception:
            logger.warning("could not forget a cached API key", exc_info=True)

    forget()
    transaction.on_commit(forget)


def _cache_add(key: str, value) -> None:
    try:
        cache.add(key, value, API_KEY_CACHE_SECONDS)
    except Exception:  # the cache is an optimisation; Redis being down must not fail a request
        logger.warning("could not cache an API key lookup", exc_info=True)


def apikey_cache_refuse(*, api_key: ApiKey) -> None:
    """The key must stop working (revoked, merchant suspended): cache a refusal, now and after commit."""

    def refuse():
        try:
            cache.set(_apikey_cache_key(api_key.key_hash), _NO_KEY, API_KEY_CACHE_SECONDS)
        except Exception:
            logger.warning("could not cache an API key refusal", exc_info=True)

    refuse()
    transaction.on_commit(refuse)
