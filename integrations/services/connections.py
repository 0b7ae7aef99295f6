"""Connecting a shop, checking the connection, disconnecting it."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.http import PlatformError
from integrations.models import Connection, Provider
from integrations.providers import provider_for
from integrations.providers.shopify import SHOP_DOMAIN
from integrations.selectors import marketing_connections_forget
from referral_saas.errors import ValidationFailed

# After a new webhook secret is set, signatures made with the old one are accepted this long (deliveries in flight,
# a platform still retrying).
PREVIOUS_SECRET_GRACE = timedelta(days=3)


def _clean_account(provider: str, account: str) -> str:
    account = (account or "").strip()
    if provider == Provider.SHOPIFY:
        account = account.lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        # Outbound calls go to https://<account>: only a shop's own myshopify.com domain, never a host of choice.
        if not SHOP_DOMAIN.match(account):
            raise ValidationFailed(
                fields={"account": [_("Name the shop by its myshopify.com domain, e.g. my-shop.myshopify.com.")]}
            )
    elif provider == Provider.WOOCOMMERCE:
        account = account.rstrip("/")
    if not account or len(account) > 255:
        raise ValidationFailed(fields={"account": [_("Name the shop's account (1 to 255 characters).")]})
    return account


def connection_create(
    *,
    merchant,
    provider: str,
    account: str,
    secret: str,
    credentials: dict | None = None,
    base_url: str = "",
    livemode: bool = True,
    sync: dict | None = None,
    status: str = Connection.Status.ACTIVE,
) -> tuple[Connection, bool]:
    """Connect a shop, or connect it again: one connection per merchant, platform, account and mode
    (`connection_one_per_account`). Connecting again with another webhook secret keeps the old one accepted for
    PREVIOUS_SECRET_GRACE; new credentials replace the old. Returns (connection, created)."""
    handler = provider_for(provider)
    if handler is None:
        raise ValidationFailed(fields={"provider": [_("Unknown platform.")]})
    account = _clean_account(provider, account)
    secret = (secret or "").strip()
    if not secret:
        raise ValidationFailed(fields={"secret": [_("The webhook signing secret is required.")]})
    if handler.marketing:  # a marketing tool's secret is its API key: a credential (it sends us no webhooks)
        credentials, secret = {**(credentials or {}), "api_key": secret}, ""
    scope = Connection.objects.for_merchant(merchant)
    for _attempt in (1, 2):
        existing = scope.filter(provider=provider, account=account, livemode=livemode).first()
        if existing is None:
            try:
                with transaction.atomic():
                    connection = scope.create(
                        provider=provider,
                        account=account,
                        livemode=livemode,
                        webhook_secret=secret,
                        credentials=credentials or {},
                        base_url=base_url,
                        settings=sync or {},
                        status=status,
                    )
                if handler.marketing:
                    _forget_marketing(connection.merchant_id)
                return connection, True
            except IntegrityError:  # connected concurrently: update that one
                continue
        with transaction.atomic():
            locked = scope.select_for_update().get(pk=existing.pk)
            if locked.webhook_secret != secret:
                locked.previous_webhook_secret = locked.webhook_secret
                locked.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_GRACE
                locked.webhook_secret = secret
            if credentials:
                locked.credentials = credentials
            if base_url:
                locked.base_url = base_url
            if sync is not None:
                locked.settings = sync
            locked.status, locked.disconnected_at = status, None
            locked.save()
        if handler.marketing:
            _forget_marketing(locked.merchant_id)
        return locked, False
    raise AssertionError("unreachable")  # pragma: no cover


def _forget_marketing(merchant_id: int) -> None:
    # Now, and again once the change is visible (a reader in between would cache the old list otherwise).
    marketing_connections_forget(merchant_id=merchant_id)
    transaction.on_commit(lambda: marketing_connections_forget(merchant_id=merchant_id))


def connection_record_error(*, connection: Connection, error: str) -> None:
    """Show the last thing that went wrong with this connection (the admin list and page)."""
    Connection.objects.for_merchant(connection.merchant_id).filter(pk=connection.pk).update(
        last_error=error[:2000], last_error_at=timezone.now()
    )


def connection_check(*, connection: Connection) -> str:
    """Call the platform with the stored credentials. Returns what answered; a failure is recorded as the
    connection's last error and raised (PlatformError)."""
    try:
        answer = provider_for(connection.provider).check(connection=connection)
    except PlatformError as exc:
        connection_record_error(connection=connection, error=str(exc))
        raise
    Connection.objects.for_merchant(connection.merchant_id).filter(pk=connection.pk).update(last_error="")
    return answer


def connection_disconnect(*, connection: Connection, reason: str = "", remote: bool = True) -> Connection:
    """Stop syncing: our webhooks on the platform are deleted (when `remote` and the platform allows it), the
    credentials are forgotten, the event history stays. Safe to repeat. A platform that cannot be reached does not
    stop the disconnection (its error is kept as the last error)."""
    if remote and connection.is_active:
        try:
            provider_for(connection.provider).remove_webhooks(connection=connection)
        except PlatformError as exc:
            connection_record_error(connection=connection, error=str(exc))
    with transaction.atomic():
        locked = Connection.objects.for_merchant(connection.merchant_id).select_for_update().get(pk=connection.pk)
        if locked.status != Connection.Status.DISCONNECTED:
            locked.status = Connection.Status.DISCONNECTED
            locked.disconnected_at = timezone.now()
        locked.credentials = {}
        if reason:
            locked.last_error, locked.last_error_at = reason[:2000], timezone.now()
        locked.save()
    if locked.is_marketing:
        _forget_marketing(locked.merchant_id)
    return locked


def connections_reencrypt() -> int:
    """Every connection's secrets, encrypted again with the current key (crypto.py: the first of
    INTEGRATIONS_KEYS). Reading decrypts with any listed key; saving encrypts with the first. Cross-tenant on
    purpose (an operator's command)."""
    count = 0
    for pk in Connection.all_merchants.order_by("pk").values_list("pk", flat=True).iterator():
        with transaction.atomic():
            row = Connection.all_merchants.select_for_update().get(pk=pk)
            row.save(update_fields=["credentials", "webhook_secret", "previous_webhook_secret"])
        count += 1
    return count


def connection_connect(
    *,
    merchant,
    provider: str,
    account: str,
    secret: str,
    token: str = "",
    livemode: bool = True,
    base_url: str = "",
) -> tuple[Connection, list[str]]:
    """Connect a shop with what the merchant pasted (or what OAuth gave), then register our webhook on the platform
    where its API allows it. A platform that refuses the webhooks does not undo the connection: its error is the
    connection's last error (test it, fix the token's permissions, connect again). Returns (connection, installed)."""
    handler = provider_for(provider)
    if handler is None:
        raise ValidationFailed(fields={"provider": [_("Unknown platform.")]})
    secret = (secret or "").strip()
    if not secret and handler.makes_own_secret and token.strip():
        # WooCommerce's webhooks are signed with the secret we give them, Stripe's endpoint gets one when we create
        # it: the merchant need not paste one. Connecting again keeps the one in use.
        existing = (
            Connection.objects.for_merchant(merchant)
            .filter(provider=provider, account=_clean_account(provider, account), livemode=livemode)
            .first()
        )
        secret = existing.webhook_secret if existing and existing.webhook_secret else secrets.token_urlsafe(32)
    connection, _created = connection_create(
        merchant=merchant,
        provider=provider,
        account=account,
        secret=secret,
        credentials=handler.credentials_from(token.strip()),
        base_url=base_url,
        livemode=livemode,
    )
    installed: list[str] = []
    if connection.credentials:
        try:
            installed = handler.install_webhooks(connection=connection)
        except PlatformError as exc:
            connection_record_error(connection=connection, error=f"webhooks: {exc}")
    return connection, installed
