"""Secrets at rest: a shop's access token, API keys and webhook secret are stored encrypted (Fernet: AES-128-CBC +
HMAC-SHA256) and only decrypted when a worker or the inbound endpoint needs them.

Keys come from the environment: INTEGRATIONS_KEYS, comma-separated Fernet keys, the first one encrypts and all of
them decrypt (MultiFernet), so a key is rotated by putting a new one first, running `manage.py
rotate_integration_keys` (which re-encrypts every row with it) and then dropping the old one. Unset, one key is
derived from SECRET_KEY: fine for development and tests, but then changing SECRET_KEY loses every stored credential,
so production sets its own (a system check warns).
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def derived_key(secret_key: str) -> str:
    """A Fernet key from SECRET_KEY (domain-separated, so it is never SECRET_KEY's own HMAC use)."""
    digest = hashlib.sha256(b"referral-saas integrations v1\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in getattr(settings, "INTEGRATIONS_KEYS", ()) if k.strip())
    return keys or (derived_key(settings.SECRET_KEY),)


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "INTEGRATIONS_KEYS: each key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())."
        ) from exc


def encrypt(plain: str) -> str:
    return _fernet(configured_keys()).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(configured_keys()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored integration secret cannot be decrypted with INTEGRATIONS_KEYS: the key that encrypted it is "
            "missing (keep the old key listed until `manage.py rotate_integration_keys` has run)."
        ) from exc


def reencrypt(token: str) -> str:
    """The same secret, encrypted with the current (first) key."""
    return _fernet(configured_keys()).rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column whose value is Fernet-encrypted in the database and plain in Python. Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


class EncryptedJSONField(models.TextField):
    """A dict stored as encrypted JSON (credentials: tokens, keys)."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        return json.loads(value) if value else {}

    def get_prep_value(self, value):
        if not value:
            return ""
        return encrypt(json.dumps(value, sort_keys=True))


@checks.register(checks.Tags.security)
def _keys_usable(app_configs, **kwargs):
    try:
        _fernet(configured_keys())
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="integrations.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def _production_keys(app_configs, **kwargs):
    if getattr(settings, "INTEGRATIONS_KEYS", None):
        return []
    return [
        checks.Warning(
            "INTEGRATIONS_KEYS is not set: shop credentials are encrypted with a key derived from SECRET_KEY.",
            hint="Set INTEGRATIONS_KEYS to a key from Fernet.generate_key() so that SECRET_KEY can change.",
            id="integrations.W001",
        )
    ]
