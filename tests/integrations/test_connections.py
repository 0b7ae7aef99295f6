"""Connections: secrets encrypted at rest with keys from the environment (rotation), the scriptable door
(createconnection), connecting again."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test import override_settings

from integrations.models import Connection
from integrations.services import connection_create, connection_disconnect
from referral_saas.errors import ValidationFailed
from tests.factories import shop_connection

pytestmark = pytest.mark.django_db

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _stored(pk: int) -> tuple[str, str]:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials, webhook_secret FROM integrations_connection WHERE id = %s", [pk])
        return cursor.fetchone()


def test_credentials_and_the_webhook_secret_are_encrypted_at_rest(merchant):
    connection = shop_connection(merchant, secret="shpss_webhook", credentials={"access_token": "shpat_abc123"})
    credentials, secret = _stored(connection.pk)
    assert "shpat_abc123" not in credentials
    assert "shpss_webhook" not in secret
    loaded = Connection.objects.for_merchant(merchant).get(pk=connection.pk)
    assert loaded.credentials == {"access_token": "shpat_abc123"}
    assert loaded.webhook_secret == "shpss_webhook"


def test_a_key_is_rotated_by_putting_the_new_one_first_reencrypting_and_dropping_the_old(merchant):
    with override_settings(INTEGRATIONS_KEYS=[KEY_A]):
        connection = shop_connection(merchant, secret="s3cret", credentials={"access_token": "tok"})
        before = _stored(connection.pk)
    with override_settings(INTEGRATIONS_KEYS=[KEY_B]), pytest.raises(ImproperlyConfigured):
        Connection.objects.for_merchant(merchant).get(pk=connection.pk)  # the old key is needed until re-encrypted
    with override_settings(INTEGRATIONS_KEYS=[KEY_B, KEY_A]):
        assert Connection.objects.for_merchant(merchant).get(pk=connection.pk).webhook_secret == "s3cret"
        out = StringIO()
        call_command("rotate_integration_keys", stdout=out)
        assert "1 connection(s)" in out.getvalue()
    assert _stored(connection.pk) != before
    with override_settings(INTEGRATIONS_KEYS=[KEY_B]):
        loaded = Connection.objects.for_merchant(merchant).get(pk=connection.pk)
        assert (loaded.webhook_secret, loaded.credentials) == ("s3cret", {"access_token": "tok"})


def test_createconnection_prints_the_webhook_url_as_json(merchant, settings):
    out = StringIO()
    call_command(
        "createconnection",
        "--merchant", merchant.slug, "--provider", "shopify", "--account", "Alpha-Shop.myshopify.com",
        "--secret", "hush", "--token", "shpat_x", "--base-url", "http://127.0.0.1:9/", "--json",
        stdout=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    assert set(data) == {"id", "provider", "webhook_url"}
    connection = Connection.objects.for_merchant(merchant).get(pk=data["id"])
    assert data["provider"] == "shopify"
    assert data["webhook_url"] == f"{settings.SITE_URL}/integrations/shopify/{connection.inbound_token}/webhook"
    assert connection.account == "alpha-shop.myshopify.com"
    assert connection.credentials == {"access_token": "shpat_x"}
    assert connection.base_url == "http://127.0.0.1:9/"


def test_createconnection_refuses_an_unknown_merchant():
    with pytest.raises(CommandError, match="No merchant"):
        call_command(
            "createconnection", "--merchant", "nope", "--provider", "shopify", "--account", "a", "--secret", "s"
        )


def test_connecting_again_keeps_the_connection_and_its_url(merchant):
    first = shop_connection(merchant, account="a.myshopify.com", secret="one")
    again, created = connection_create(
        merchant=merchant, provider="shopify", account="A.myshopify.com", secret="two", credentials={"x": "1"}
    )
    assert not created
    assert (again.pk, again.inbound_token) == (first.pk, first.inbound_token)
    assert again.secrets_accepted() == ["two", "one"]


def test_a_secret_is_required(merchant):
    with pytest.raises(ValidationFailed):
        connection_create(merchant=merchant, provider="shopify", account="a.myshopify.com", secret=" ")


def test_disconnecting_forgets_the_credentials_and_keeps_the_history(merchant):
    connection = shop_connection(merchant, credentials={"access_token": "tok"})
    connection_disconnect(connection=connection, remote=False)
    loaded = Connection.objects.for_merchant(merchant).get(pk=connection.pk)
    assert loaded.status == Connection.Status.DISCONNECTED
    assert loaded.credentials == {}
    connection_disconnect(connection=loaded, remote=False)  # again: nothing changes
