"""The merchant admin's shop connections and their event log: connect by pasting, test, disconnect, replay; an
analyst only looks; another merchant's rows are a 404."""

from __future__ import annotations

import pytest

from integrations.models import Connection, InboundEvent
from referral_saas.tenancy.models import Membership
from tests.conftest import staff_client
from tests.factories import MembershipFactory, UserFactory, shop_connection
from tests.integrations.conftest import payload, process_all, shopify_post

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/integrations/connection/"


def test_connecting_by_pasting_stores_the_secrets_encrypted_and_shows_the_webhook_url(tenant):
    response = tenant.admin.post(
        CHANGELIST + "add/",
        {
            "provider": "shopify",
            "account": "pasted.myshopify.com",
            "livemode": "on",
            "secret": "api-secret",
            "token": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    connection = Connection.objects.for_merchant(tenant.merchant).get()
    assert (connection.account, connection.webhook_secret) == ("pasted.myshopify.com", "api-secret")
    assert connection.webhook_url in response.content.decode()
    page = tenant.admin.get(f"{CHANGELIST}{connection.pk}/change/").content.decode()
    assert connection.webhook_url in page
    assert "api-secret" not in page  # never shown again


def test_a_shopify_account_must_be_a_myshopify_domain(tenant):
    response = tenant.admin.post(
        CHANGELIST + "add/", {"provider": "shopify", "account": "169.254.169.254", "secret": "s", "token": ""}
    )
    assert response.status_code == 200
    assert "myshopify.com" in response.content.decode()
    assert not Connection.objects.for_merchant(tenant.merchant).exists()


def test_disconnect_action(tenant):
    connection = shop_connection(tenant.merchant)
    response = tenant.admin.post(CHANGELIST, {"action": "disconnect", "_selected_action": [connection.pk]})
    assert response.status_code == 302
    assert Connection.objects.for_merchant(tenant.merchant).get().status == Connection.Status.DISCONNECTED


def test_testing_a_connection_without_a_reachable_shop_says_why(tenant):
    connection = shop_connection(tenant.merchant, credentials={"access_token": "x"}, base_url="http://127.0.0.1:9/")
    response = tenant.admin.post(
        CHANGELIST, {"action": "test_connection", "_selected_action": [connection.pk]}, follow=True
    )
    assert "ConnectError" in response.content.decode()
    assert "ConnectError" in Connection.objects.for_merchant(tenant.merchant).get().last_error


def test_the_event_log_shows_the_raw_body_and_error_and_replays(client, tenant):
    connection = shop_connection(tenant.merchant, account="log.myshopify.com")
    data = payload("shopify", "orders_paid")
    del data["current_subtotal_price_set"], data["current_subtotal_price"], data["subtotal_price"]
    shopify_post(client, connection, "orders/paid", data)
    process_all(tenant.merchant)
    event = InboundEvent.objects.for_merchant(tenant.merchant).get()
    listing = tenant.admin.get("/admin/integrations/inboundevent/").content.decode()
    assert "orders/paid" in listing
    assert "subtotal_price" in listing  # the error, on the list
    detail = tenant.admin.get(f"/admin/integrations/inboundevent/{event.pk}/change/").content.decode()
    assert "jon@example.com" in detail  # the raw body
    replayed = tenant.admin.post(
        "/admin/integrations/inboundevent/", {"action": "replay", "_selected_action": [event.pk]}
    )
    assert replayed.status_code == 302
    assert InboundEvent.objects.for_merchant(tenant.merchant).get().status == InboundEvent.Status.RECEIVED


def test_an_analyst_sees_the_log_but_cannot_replay_or_connect(tenant):
    analyst = UserFactory(email="analyst@alpha.example")
    MembershipFactory(merchant=tenant.merchant, user=analyst, role=Membership.Role.ANALYST)
    admin = staff_client(analyst, tenant.merchant)
    assert admin.get("/admin/integrations/inboundevent/").status_code == 200
    assert admin.get(CHANGELIST + "add/").status_code == 403
    assert admin.get(CHANGELIST + "shopify/install/").status_code == 403


def test_another_merchants_connection_is_a_404(tenant, other_tenant):
    theirs = shop_connection(other_tenant.merchant)
    assert tenant.admin.get(f"{CHANGELIST}{theirs.pk}/change/").status_code == 404
