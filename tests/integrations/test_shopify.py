"""Shopify, against a real local HTTP server (pytest-httpserver) standing in for the shop's Admin API: coupons
(discountCodeBasicCreate and its userErrors), reconciliation, webhooks created and deleted, OAuth install; and the
GDPR and uninstall topics."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.utils import timezone
from werkzeug import Response

from integrations.models import Connection, InboundEvent
from integrations.providers.shopify import API_VERSION, oauth_query_valid
from integrations.services import connection_check, connection_connect, connection_disconnect
from integrations.services.reconcile import connection_reconcile
from programs.models import Participant
from rewards.models import Reward
from tests.factories import join, shop_connection
from tests.integrations.conftest import payload, process_all, released, shopify_post
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db

GRAPHQL = f"/admin/api/{API_VERSION}/graphql.json"


def _graphql(request) -> dict:
    return json.loads(request.get_data())


@pytest.fixture
def shop(merchant, httpserver):
    return shop_connection(
        merchant,
        account="alpha-shop.myshopify.com",
        credentials={"access_token": "shpat_test"},
        base_url=httpserver.url_for("/"),
    )


# --- OAuth ----------------------------------------------------------------------------------------------------------


def test_shopifys_documented_oauth_test_vector_verifies():
    """The example of Shopify's "Verify the installation request" (secret "hush")."""
    query = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    assert oauth_query_valid(query, "hush")
    assert not oauth_query_valid({**query, "shop": "evil.myshopify.com"}, "hush")
    assert not oauth_query_valid(query, "not-hush")
    assert not oauth_query_valid({k: v for k, v in query.items() if k != "hmac"}, "hush")


def _signed(query: dict, secret: str) -> dict:
    message = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    return {**query, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def test_installing_by_oauth_gets_an_offline_token_and_creates_the_webhooks(tenant, settings, httpserver):
    settings.SHOPIFY_CLIENT_ID, settings.SHOPIFY_CLIENT_SECRET = "client-id", "client-secret"
    settings.SHOPIFY_OAUTH_BASE_URL = httpserver.url_for("").rstrip("/")
    httpserver.expect_oneshot_request(
        "/admin/oauth/access_token",
        method="POST",
        json={"client_id": "client-id", "client_secret": "client-secret", "code": "the-code"},
    ).respond_with_json({"access_token": "shpat_offline", "scope": "read_orders,write_discounts"})
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"webhookSubscriptionCreate": {"webhookSubscription": {"id": "gid://1"}, "userErrors": []}}}
    )
    shop = "new-shop.myshopify.com"
    started = tenant.admin.get("/admin/integrations/connection/shopify/install/", {"shop": shop})
    assert started.status_code == 302
    authorize = urlsplit(started["Location"])
    assert authorize.path == "/admin/oauth/authorize"
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["client_id"] == "client-id"
    assert params["redirect_uri"].endswith("/admin/integrations/connection/shopify/callback/")
    assert "grant_options[]" not in params  # an offline token: it keeps working without a signed-in user

    forged = _signed({"code": "the-code", "shop": shop, "state": "guessed", "timestamp": "1"}, "client-secret")
    assert tenant.admin.get("/admin/integrations/connection/shopify/callback/", forged).status_code == 400
    started = tenant.admin.get("/admin/integrations/connection/shopify/install/", {"shop": shop})
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    callback = _signed({"code": "the-code", "shop": shop, "state": state, "timestamp": "1"}, "client-secret")
    done = tenant.admin.get("/admin/integrations/connection/shopify/callback/?" + urlencode(callback))
    assert done.status_code == 302, done.content
    connection = Connection.objects.for_merchant(tenant.merchant).get(account=shop)
    assert connection.credentials == {"access_token": "shpat_offline"}
    assert connection.webhook_secret == "client-secret"
    topics = [_graphql(r)["variables"]["topic"] for r, _ in httpserver.log if r.path == GRAPHQL]
    assert topics == ["ORDERS_PAID", "REFUNDS_CREATE", "ORDERS_CANCELLED", "APP_UNINSTALLED"]
    assert {_graphql(r)["variables"]["sub"]["callbackUrl"] for r, _ in httpserver.log if r.path == GRAPHQL} == {
        connection.webhook_url
    }
    # The callback is used up: the same link again is refused.
    assert (
        tenant.admin.get("/admin/integrations/connection/shopify/callback/?" + urlencode(callback)).status_code == 400
    )


def test_an_install_request_with_a_bad_signature_is_refused(tenant, settings):
    settings.SHOPIFY_CLIENT_ID, settings.SHOPIFY_CLIENT_SECRET = "client-id", "client-secret"
    query = {"shop": "x.myshopify.com", "timestamp": "1", "hmac": "00" * 32}
    assert tenant.admin.get("/admin/integrations/connection/shopify/install/", query).status_code == 400


def test_pasting_a_custom_apps_token_connects_and_creates_the_webhooks(merchant, httpserver):
    httpserver.expect_request(
        GRAPHQL, method="POST", headers={"X-Shopify-Access-Token": "shpat_custom"}
    ).respond_with_json(
        {"data": {"webhookSubscriptionCreate": {"webhookSubscription": {"id": "gid://1"}, "userErrors": []}}}
    )
    connection, installed = connection_connect(
        merchant=merchant,
        provider="shopify",
        account="own-app.myshopify.com",
        secret="api-secret-key",
        token="shpat_custom",
        base_url=httpserver.url_for("/"),
    )
    assert installed == ["ORDERS_PAID", "REFUNDS_CREATE", "ORDERS_CANCELLED", "APP_UNINSTALLED"]
    assert connection.last_error == ""


def test_disconnecting_deletes_our_webhooks_on_the_shop(shop, httpserver):
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"webhookSubscriptions": {"nodes": [{"id": "gid://shopify/WebhookSubscription/1"}]}}}
    )
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": "gid://1", "userErrors": []}}}
    )
    connection_disconnect(connection=shop)
    listed, deleted = (_graphql(r) for r, _ in httpserver.log)
    assert listed["variables"] == {"url": shop.webhook_url}
    assert deleted["variables"] == {"id": "gid://shopify/WebhookSubscription/1"}
    assert Connection.objects.for_merchant(shop.merchant).get().status == Connection.Status.DISCONNECTED


# --- coupons --------------------------------------------------------------------------------------------------------


def test_a_coupon_reward_is_created_on_the_shop_before_it_is_issued(shop, coupon_reward, httpserver):
    httpserver.expect_oneshot_request(
        GRAPHQL, method="POST", headers={"X-Shopify-Access-Token": "shpat_test"}
    ).respond_with_json(
        {
            "data": {
                "discountCodeBasicCreate": {
                    "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"},
                    "userErrors": [],
                }
            }
        }
    )
    reward = released(coupon_reward)
    assert reward.status == Reward.Status.ISSUED
    [(request, _response)] = httpserver.log
    sent = _graphql(request)
    assert "discountCodeBasicCreate" in sent["query"]
    discount = sent["variables"]["basicCodeDiscount"]
    assert discount["code"] == reward.coupon_code
    assert discount["title"] == f"Referral reward #{reward.pk}"
    assert (discount["usageLimit"], discount["appliesOncePerCustomer"]) == (1, True)
    assert discount["customerGets"] == {
        "value": {"discountAmount": {"amount": "20.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }
    assert discount["context"] == {"all": "ALL"}
    assert discount["endsAt"] is not None


def test_user_errors_inside_a_200_keep_the_reward_approved_with_the_error_visible(shop, coupon_reward, httpserver):
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_json(
        {
            "data": {
                "discountCodeBasicCreate": {
                    "codeDiscountNode": None,
                    "userErrors": [
                        {
                            "field": ["basicCodeDiscount", "endsAt"],
                            "code": "INVALID",
                            "message": "Ends at needs to be after starts at",
                        }
                    ],
                }
            }
        }
    )
    reward = released(coupon_reward)
    assert reward.status == Reward.Status.APPROVED
    assert reward.flag == Reward.Flag.PLATFORM_PENDING
    assert "Ends at needs to be after starts at" in reward.reason
    assert reward.coupon_code  # kept: the retry offers the same code
    assert "Ends at needs" in Connection.objects.for_merchant(shop.merchant).get().last_error


def test_a_taken_code_gets_a_suffix(shop, coupon_reward, httpserver):
    taken = {"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique."}
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [taken]}}}
    )
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"codeDiscountNodeByCode": {"id": "gid://9", "codeDiscount": {"title": "Black Friday"}}}}
    )
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://10"}, "userErrors": []}}}
    )
    reward = released(coupon_reward)
    assert reward.status == Reward.Status.ISSUED
    first, _lookup, second = (_graphql(r)["variables"] for r, _ in httpserver.log)
    assert second["basicCodeDiscount"]["code"] == first["basicCodeDiscount"]["code"] + "-2" == reward.coupon_code


def test_the_platform_down_keeps_the_reward_approved_then_a_retry_issues_it_once_with_the_same_code(
    shop, coupon_reward, httpserver
):
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_response(Response("down", status=503))
    reward = released(coupon_reward)
    assert (reward.status, reward.flag) == (Reward.Status.APPROVED, Reward.Flag.PLATFORM_PENDING)
    assert "503" in reward.reason
    assert reward.hold_until > timezone.now()  # tried again later
    drawn = reward.coupon_code
    # The platform created it after all, but its answer was lost: the retry finds the code taken, by us.
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {
            "data": {
                "discountCodeBasicCreate": {
                    "codeDiscountNode": None,
                    "userErrors": [
                        {"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique."}
                    ],
                }
            }
        }
    )
    httpserver.expect_ordered_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"codeDiscountNodeByCode": {"codeDiscount": {"title": f"Referral reward #{reward.pk}"}}}}
    )
    Reward.objects.for_merchant(reward.merchant_id).filter(pk=reward.pk).update(hold_until=timezone.now())
    reward = released(reward)
    assert (reward.status, reward.flag, reward.reason) == (Reward.Status.ISSUED, "", "")
    assert reward.coupon_code == drawn
    assert released(reward).status == Reward.Status.ISSUED  # nothing more is sent
    assert len(httpserver.log) == 3


def test_without_a_connected_shop_coupons_are_issued_as_before(coupon_reward):
    assert released(coupon_reward).status == Reward.Status.ISSUED


# --- reconciliation -------------------------------------------------------------------------------------------------


ORDER_NODE = {
    "id": "gid://shopify/Order/820982911946154508",
    "legacyResourceId": "820982911946154508",
    "email": "jon@example.com",
    "processedAt": "2026-11-23T15:30:00Z",
    "cancelledAt": None,
    "test": False,
    "displayFinancialStatus": "PARTIALLY_REFUNDED",
    "discountCodes": [],
    "customAttributes": [{"key": "ref", "value": "REPLACED"}],
    "currentSubtotalPriceSet": {"shopMoney": {"amount": "200.00", "currencyCode": "PLN"}},
    "customer": {
        "id": "gid://shopify/Customer/115310627314723954",
        "legacyResourceId": "115310627314723954",
        "email": "john@example.com",
    },
    "refunds": [
        {
            "id": "gid://shopify/Refund/890088186047892319",
            "legacyResourceId": "890088186047892319",
            "note": "damaged",
            "createdAt": "2026-11-24T14:00:00Z",
            "transactions": {
                "nodes": [
                    {
                        "kind": "REFUND",
                        "status": "SUCCESS",
                        "amountSet": {"shopMoney": {"amount": "50.00", "currencyCode": "PLN"}},
                    }
                ]
            },
        }
    ],
}


def test_reconciliation_finds_what_the_webhooks_missed_and_stores_each_event_once(client, shop, referrer, httpserver):
    _anna, code = referrer
    node = {**ORDER_NODE, "customAttributes": [{"key": "ref", "value": code.code}]}
    page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [node]}}}
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_json(page)
    # The refund's webhook arrived; the order's was given up on by the platform.
    shopify_post(client, shop, "refunds/create", payload("shopify", "refunds_create"))
    assert connection_reconcile(merchant_id=shop.merchant_id, connection_id=shop.pk) == 1  # the order only
    [(request, _)] = httpserver.log
    assert _graphql(request)["variables"]["query"].startswith("updated_at:>=")
    events = InboundEvent.objects.for_merchant(shop.merchant)
    assert sorted(events.values_list("event_id", "source")) == [
        ("orders/paid:820982911946154508", "reconcile"),
        ("refunds/create:890088186047892319", "webhook"),
    ]
    process_all(shop.merchant)
    process_all(shop.merchant)  # the refund, woken by its order
    conversion = Conversion.objects.for_merchant(shop.merchant).get()
    assert (conversion.order_id, conversion.amount, conversion.status) == (
        "shopify:820982911946154508",
        Decimal("200.00"),
        Conversion.Status.ATTRIBUTED,
    )
    assert conversion.refunded_amount == Decimal("50.00")
    assert Connection.objects.for_merchant(shop.merchant).get().synced_until is not None
    # The next run and the order's late webhook change nothing.
    assert connection_reconcile(merchant_id=shop.merchant_id, connection_id=shop.pk) == 0
    assert shopify_post(client, shop, "orders/paid", payload("shopify", "orders_paid")).json()["duplicate"] is True
    assert Refund.objects.for_merchant(shop.merchant).count() == 1


def test_connection_check_calls_the_shop(shop, httpserver):
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_json(
        {"data": {"shop": {"name": "Alpha", "myshopifyDomain": "alpha-shop.myshopify.com", "currencyCode": "PLN"}}}
    )
    assert connection_check(connection=shop) == "Alpha (alpha-shop.myshopify.com, PLN)"


# --- privacy and uninstalling ---------------------------------------------------------------------------------------


def test_a_customer_data_request_exports_what_we_hold_and_a_redact_erases_it(client, shopify, program):
    anna = join(program, email="john@example.com", name="John")[0]
    shopify_post(
        client, shopify, "customers/data_request", payload("shopify", "customers_data_request"), event_id="dr-1"
    )
    assert process_all(shopify.merchant) == ["processed"]
    event = InboundEvent.objects.for_merchant(shopify.merchant).get(topic="customers/data_request")
    assert event.result["request_id"] == "9999"
    [exported] = event.result["participants"]
    assert exported["profile"]["email"] == "john@example.com"

    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid", id=299938))  # one of theirs
    shopify_post(client, shopify, "customers/redact", payload("shopify", "customers_redact"), event_id="rd-1")
    assert process_all(shopify.merchant) == ["processed", "processed"]
    anna.refresh_from_db()
    assert (anna.status, anna.email) == (Participant.Status.ERASED, None)
    order_event = InboundEvent.objects.for_merchant(shopify.merchant).get(order_ref="shopify:299938")
    assert b"jon@example.com" not in bytes(order_event.body)


def test_app_uninstalled_disconnects_and_later_orders_are_ignored(client, shopify):
    shopify_post(client, shopify, "app/uninstalled", payload("shopify", "app_uninstalled"), event_id="un-1")
    assert process_all(shopify.merchant) == ["processed"]
    connection = Connection.objects.for_merchant(shopify.merchant).get()
    assert connection.status == Connection.Status.DISCONNECTED
    assert connection.credentials == {}
    # shop/redact comes 48 hours later, still signed with the app's secret: accepted.
    assert (
        shopify_post(client, shopify, "shop/redact", payload("shopify", "shop_redact"), event_id="sr").status_code
        == 200
    )
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    process_all(shopify.merchant)
    assert not Conversion.objects.for_merchant(shopify.merchant).exists()
