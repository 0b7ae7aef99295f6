"""Connecting a WooCommerce store in one click (https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication
-endpoint): the merchant is sent to the store's /wc-auth/v1/authorize, approves, and the store posts a new key pair
to our callback as JSON. The callback is not signed by WooCommerce: what proves it is ours is the `user_id` we gave,
a signed, timed token naming the merchant, the store and the mode. We then choose the webhook secret ourselves and
create our webhooks on the store through its API (a task: the store is still waiting for our answer)."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from integrations.http import PlatformError
from integrations.models import Connection, Provider
from integrations.providers import provider_for
from integrations.providers.base import BadPayload, load_json
from integrations.services.connections import connection_create, connection_record_error
from referral_saas.celery import enqueue_on_commit
from referral_saas.errors import PermissionDeniedError, ValidationFailed
from referral_saas.tenancy.models import Merchant
from referral_saas.webhooks.sending import url_refusal

AUTH_SALT = "integrations.woocommerce.authorize"
AUTH_MAX_AGE = 60 * 60  # the merchant approves within the hour
INSTALL_TASK = "integrations.install_webhooks"
KEY_RE = re.compile(r"^ck_[A-Za-z0-9]{20,64}$")
SECRET_RE = re.compile(r"^cs_[A-Za-z0-9]{20,64}$")
APP_NAME = "Referral SaaS"


def _site(site: str) -> str:
    site = (site or "").strip().rstrip("/")
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", site) or len(site) > 255:
        raise ValidationFailed(fields={"account": [_("Give the store's address, e.g. https://shop.example.com.")]})
    refusal = url_refusal(site)
    if refusal:
        raise ValidationFailed(fields={"account": [refusal]})
    return site


def woocommerce_authorize_url(*, merchant, site: str, livemode: bool = True, return_url: str = "") -> str:
    """Where to send the merchant to approve our access to their store (read_write: orders, coupons, webhooks)."""
    site = _site(site)
    state = signing.dumps({"m": merchant.pk, "s": site, "l": livemode}, salt=AUTH_SALT, compress=True)
    query = {
        "app_name": APP_NAME,
        "scope": "read_write",
        "user_id": state,
        "return_url": return_url or f"{settings.SITE_URL}{reverse('admin:integrations_connection_changelist')}",
        "callback_url": f"{settings.SITE_URL}{reverse('integrations:woocommerce-callback')}",
    }
    return f"{site}/wc-auth/v1/authorize?{urlencode(query)}"


def woocommerce_auth_callback(*, body: bytes) -> Connection:
    """The store's key pair, posted after the merchant approved: verified (our signed state, the key formats, the
    permission) and stored encrypted; a fresh webhook secret; our webhooks created by a task. Posting it again (the
    store retries) connects again with the newer keys."""
    try:
        payload = load_json(body)
    except BadPayload as exc:
        raise ValidationFailed(str(exc)) from exc
    try:
        state = signing.loads(str(payload.get("user_id") or ""), salt=AUTH_SALT, max_age=AUTH_MAX_AGE)
    except signing.BadSignature as exc:  # SignatureExpired included
        raise PermissionDeniedError(_("This approval was not started here, or is more than an hour old.")) from exc
    key, secret = str(payload.get("consumer_key") or ""), str(payload.get("consumer_secret") or "")
    if not KEY_RE.match(key) or not SECRET_RE.match(secret):
        raise ValidationFailed(fields={"consumer_key": [_("Not a WooCommerce key pair (ck_..., cs_...).")]})
    if payload.get("key_permissions") != "read_write":
        raise ValidationFailed(fields={"key_permissions": [_("Read and write access is needed (coupons, webhooks).")]})
    merchant = Merchant.objects.filter(pk=state.get("m")).first()
    if merchant is None:
        raise PermissionDeniedError(_("This approval was not started here."))
    connection, _created = connection_create(
        merchant=merchant,
        provider=Provider.WOOCOMMERCE,
        account=state["s"],
        secret=secrets.token_urlsafe(32),
        credentials={"consumer_key": key, "consumer_secret": secret, "auth": "basic", "key_id": payload.get("key_id")},
        livemode=bool(state.get("l", True)),
    )
    enqueue_on_commit(INSTALL_TASK, merchant_id=merchant.pk, connection_id=connection.pk)
    return connection


def connection_install_webhooks(*, merchant_id: int, connection_id: int) -> list[str]:
    """Create our webhooks on the platform (after a one-click connection). A refusal is the connection's last
    error; a platform that cannot be reached raises (the task tries again)."""
    connection = Connection.objects.for_merchant(merchant_id).filter(pk=connection_id).first()
    if connection is None or not connection.is_active or not connection.credentials:
        return []
    try:
        return provider_for(connection.provider).install_webhooks(connection=connection)
    except PlatformError as exc:
        connection_record_error(connection=connection, error=f"webhooks: {exc}")
        if exc.transient:
            raise
        return []
