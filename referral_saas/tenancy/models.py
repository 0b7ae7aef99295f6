"""The tenant (Merchant), its staff (User + Membership), API keys and teammate invitations."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from referral_saas.money import validate_currency
from referral_saas.tenancy.managers import AllMerchantsManager, TenantManager
from referral_saas.validators import SingleLineCharField

LANGUAGE_CHOICES = [("en", "English"), ("pl", "Polski"), ("ro", "Română"), ("ru", "Русский")]


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone (e.g. Europe/Warsaw)."), params={"value": value})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in: merchant staff (through Membership) or a platform operator (is_superuser)."""

    username = None
    email = models.EmailField(_("email address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


def new_portal_secret() -> str:
    import secrets

    return "pss_" + secrets.token_urlsafe(32)


class Merchant(models.Model):
    """The tenant. Every tenant-owned row points here."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = SingleLineCharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    default_currency = models.CharField(
        _("default currency"), max_length=3, default="USD", validators=[validate_currency]
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_timezone])
    default_language = models.CharField(_("default language"), max_length=5, choices=LANGUAGE_CHOICES, default="en")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    portal_secret = models.CharField(
        _("portal sign-in secret"),
        max_length=64,
        default=new_portal_secret,
        editable=False,
        help_text=_("Your shop signs links that sign customers into the referral portal with this (HMAC-SHA256)."),
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class ShopSettings(Merchant):
    """The merchant admin's view of its own Merchant row ("Shop settings")."""

    class Meta:
        proxy = True
        verbose_name = _("shop settings")
        verbose_name_plural = _("shop settings")


class TenantModel(models.Model):
    """Base of every tenant-owned table: a merchant on every row, scoped access through `objects.for_merchant`.

    Indexes and unique constraints of subclasses start with `merchant` (a test walks the models to prove it).
    """

    # No index of its own: every tenant table has composite indexes that start with merchant (checked by a test),
    # and a lone merchant_id index only tempts PostgreSQL into scanning a merchant's whole history.
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+", editable=False, db_index=False)

    # Order matters: the first manager is Django's default (related managers, admin base querysets).
    all_merchants = AllMerchantsManager()
    objects = TenantManager()

    class Meta:
        abstract = True


class Membership(TenantModel):
    """A user's role at one merchant. A user can belong to several merchants."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        ANALYST = "analyst", _("Analyst (read only)")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ADMIN)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "user"], name="membership_unique_user")]
        ordering = ["created_at"]
        verbose_name = _("teammate")
        verbose_name_plural = _("teammates")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"

    @property
    def can_write(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class ApiKey(TenantModel):
    """A shop's credential. Only a SHA-256 hash and the last four characters are stored; the key is shown once."""

    class Mode(models.TextChoices):
        LIVE = "live", _("Live")
        TEST = "test", _("Test")

    name = SingleLineCharField(_("name"), max_length=100)
    mode = models.CharField(_("mode"), max_length=4, choices=Mode.choices, default=Mode.LIVE)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, editable=False)
    created_at = models.DateTimeField(default=now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "key_hash"], name="apikey_unique_hash")]
        # Authentication looks a key up by its hash alone (the request names no merchant): a 256-bit random
        # secret makes a cross-merchant collision impossible in practice; this is a lookup index, not a rule.
        indexes = [models.Index(fields=["key_hash"], name="apikey_hash_lookup")]
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(TenantModel):
    """An email invitation to join a merchant's team with a role. Only the token's hash is stored."""

    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=16, choices=Membership.Role.choices, default=Membership.Role.ADMIN)
    token_hash = models.CharField(max_length=64, editable=False)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "token_hash"], name="invitation_unique_token"),
            models.UniqueConstraint(
                "merchant",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_one_pending_per_email",
            ),
        ]
        indexes = [models.Index(fields=["token_hash"], name="invitation_token_lookup")]
        ordering = ["-created_at"]
        verbose_name = _("invitation")

    def __str__(self) -> str:
        return f"{self.email} ({self.get_role_display()})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.expires_at <= now():
            return "expired"
        return "pending"


class IdempotencyRecord(TenantModel):
    """The stored first response to a POST sent with an `Idempotency-Key` (kept at least 24 hours)."""

    livemode = models.BooleanField(default=True)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "livemode", "key"], name="idempotency_unique_key")]
        indexes = [models.Index(fields=["merchant", "created_at"], name="idempotency_by_created")]

    def __str__(self) -> str:
        return self.key
