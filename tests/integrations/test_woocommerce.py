"""WooCommerce: orders written from the REST API's documented order, signed here as WooCommerce signs webhooks,
posted to the real endpoint; the store's API (coupons, orders, webhooks) answered by a real local HTTP server that
checks each request; the one-click authorization's callback posted as the store posts it."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.utils import timezone
from werkzeug import Response

from integrations.http import PlatformError
from integrations.models import Connection, InboundEvent
from integrations.providers.base import Coupon, Inbound
from integrations.providers.woocommerce import WooCommerce, sign
from integrations.services import connection_check, connection_connect, connection_disconnect, inbound_event_store
from integrations.services.woocommerce import (
    AUTH_SALT,
    connection_install_webhooks,
    woocommerce_auth_callback,
    woocommerce_authorize_url,
)
from referral_saas.errors import PermissionDeniedError, ValidationFailed
from rewards.models import Reward
from rewards.services import refund_apply
from tests.factories import shop_connection
from tests.integrations.conftest import payload, process_all, released
from tests.rewards.helpers import order, process, rule
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db

SECRET = "wc-hook-secret-0f9a8b7c"
CK, CS = "ck_" + "a1" * 20, "cs_" + "b2" * 20
BASIC = "Basic " + base64.b64encode(f"{CK}:{CS}".encode()).decode()


def wc_order(**changes) -> dict:
    data = copy.deepcopy(payload("woocommerce", "order"))
    paid = (timezone.now() - timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    data.update(date_paid=paid, date_paid_gmt=paid, date_created_gmt=paid)  # paid a minute ago
    data.update(changes)
    return data


def wc_post(client, connection, data: dict, *, topic: str = "order.created", secret: str = SECRET, delivery="1"):
    body = json.dumps(data).encode()
    resource, _dot, event_name = topic.partition(".")
    return client.post(
        connection.webhook_path,
        data=body,
        content_type="application/json",
        headers={
            "X-WC-Webhook-Source": "https://shop.example.pl/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event_name,
            "X-WC-Webhook-Signature": sign(secret, body),
            "X-WC-Webhook-ID": "14",
            "X-WC-Webhook-Delivery-ID": delivery,
        },
    )


@pytest.fixture(autouse=True)
def _local_store_allowed(settings):
    """The tests' store is the local HTTP server, on 127.0.0.1: allowed here as in development."""
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def store(merchant):
    """A store connected with its webhook secret only (no keys: nothing is asked of it)."""
    return shop_connection(merchant, provider="woocommerce", account="https://shop.example.pl", secret=SECRET)


@pytest.fixture
def store_api(merchant, httpserver):
    """A store connected with pasted keys, its API at the local server."""
    return shop_connection(
        merchant,
        provider="woocommerce",
        account=httpserver.url_for("").rstrip("/"),
        secret=SECRET,
        credentials=WooCommerce().credentials_from(f"{CK}:{CS}"),
    )


def expect(httpserver, path: str, method: str = "GET", **kwargs):
    """A request the store must get, with the connection's keys."""
    return httpserver.expect_ordered_request(
        f"/wp-json/wc/v3{path}", method=method, headers={"Authorization": BASIC}, **kwargs
    )


# --- signatures and the ping --------------------------------------------------------------------------------------


def test_a_bad_signature_is_401_and_nothing_is_stored(client, store):
    assert wc_post(client, store, wc_order(), secret="another").status_code == 401
    assert not InboundEvent.objects.for_merchant(store.merchant).exists()


def test_the_unsigned_ping_of_a_new_webhook_is_200_and_stores_nothing(client, store):
    response = client.post(store.webhook_path, data=b"webhook_id=14", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json()["ping"] is True
    assert not InboundEvent.objects.for_merchant(store.merchant).exists()
    # Anything else unsigned is refused.
    assert client.post(store.webhook_path, data=b"{}", content_type="application/json").status_code == 401


# --- orders -------------------------------------------------------------------------------------------------------


def test_a_paid_order_is_one_conversion_however_often_it_is_sent(client, store, referrer):
    anna, code = referrer
    data = wc_order(meta_data=[{"id": 1, "key": "ref", "value": code.code}])
    responses = [
        wc_post(client, store, data, delivery="101"),
        wc_post(client, store, data, delivery="102"),  # WooCommerce's retry: a new delivery id
        wc_post(client, store, data, topic="order.updated", delivery="103"),  # nothing new in it
    ]
    assert [r.json()["duplicate"] for r in responses] == [False, True, True]
    assert process_all(store.merchant) == ["processed"]
    conversion = Conversion.objects.for_merchant(store.merchant).get()
    assert conversion.order_id == "woocommerce:727"
    # The line items after the 20.00 coupon; shipping (10.00) and tax (46.00) of the 256.00 total left out.
    assert (conversion.amount, conversion.currency) == (Decimal("200.00"), "PLN")
    assert conversion.referral.referrer == anna
    assert (conversion.customer_external_id, conversion.customer_email) == ("26", "jon@example.com")
    assert conversion.ip == "203.0.113.7"


def test_woocommerces_own_order_attribution_landing_page_attributes_the_order(client, store, referrer):
    _anna, code = referrer
    entry = {
        "id": 2,
        "key": "_wc_order_attribution_session_entry",
        "value": f"https://shop.example.pl/?ref={code.code}",
    }
    wc_post(client, store, wc_order(meta_data=[entry]))
    process_all(store.merchant)
    assert Conversion.objects.for_merchant(store.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_a_referral_code_used_as_a_coupon_attributes_the_order(client, store, referrer):
    _anna, code = referrer
    wc_post(client, store, wc_order(coupon_lines=[{"id": 3, "code": code.code.lower(), "discount": "20.00"}]))
    process_all(store.merchant)
    assert Conversion.objects.for_merchant(store.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_an_unpaid_order_is_ignored_until_an_update_says_it_is_paid(client, store, program):
    wc_post(client, store, wc_order(status="pending", date_paid=None, date_paid_gmt=None))
    wc_post(client, store, wc_order(status="on-hold", date_paid=None, date_paid_gmt=None), topic="order.updated")
    assert process_all(store.merchant) == ["ignored", "ignored"]
    assert not Conversion.objects.for_merchant(store.merchant).exists()
    wc_post(client, store, wc_order(status="processing"), topic="order.updated")
    assert process_all(store.merchant) == ["processed"]
    assert Conversion.objects.for_merchant(store.merchant).count() == 1


# --- refunds ------------------------------------------------------------------------------------------------------

PARTIAL = [{"id": 730, "reason": "one pair too small", "total": "-64.00"}]  # a quarter of the 256.00 total
FULL = [{"id": 731, "reason": "", "total": "-192.00"}, *PARTIAL]  # WooCommerce lists the newest first


def _latest_reward(merchant) -> tuple[str, Decimal]:
    reward = Reward.objects.for_merchant(merchant).order_by("pk").last()
    return (reward.status, reward.value)


def _apply_refunds(merchant):
    for refund in Refund.objects.for_merchant(merchant).order_by("pk"):
        refund_apply(merchant=merchant, refund_id=refund.pk)


def test_order_then_partial_then_full_refund_rewards_as_the_api_does(client, tenant, program, referrer, store):
    _anna, code = referrer
    rule(program)  # 10% of the order for the referrer
    meta = [{"id": 1, "key": "ref", "value": code.code}]
    wc_post(client, store, wc_order(meta_data=meta))
    process_all(tenant.merchant)
    process(tenant, Conversion.objects.for_merchant(tenant.merchant).get().pk)
    through_woocommerce = [_latest_reward(tenant.merchant)]
    for status, refunds in (("processing", PARTIAL), ("refunded", FULL)):
        wc_post(client, store, wc_order(meta_data=meta, status=status, refunds=refunds), topic="order.updated")
        process_all(tenant.merchant)
        _apply_refunds(tenant.merchant)
        through_woocommerce.append(_latest_reward(tenant.merchant))
    refunds = Refund.objects.for_merchant(tenant.merchant).order_by("pk")
    # Each refund pro-rated from the order's total (with shipping and tax) to its amount: 64 of 256 is 50 of 200.
    assert [(r.refund_id, r.amount) for r in refunds] == [
        ("woocommerce:refund:730", Decimal("50.00")), ("woocommerce:refund:731", Decimal("150.00"))
    ]  # fmt: skip

    process(tenant, order(tenant, code, order_id="api-1", amount="200.00", friend="bob@example.org")["id"])
    through_api = [_latest_reward(tenant.merchant)]
    for refund_id, amount in (("r-1", "50.00"), ("r-2", "150.00")):
        tenant.api.post("/api/v1/conversions/api-1/refunds", {"amount": amount, "refund_id": refund_id}, format="json")
        _apply_refunds(tenant.merchant)
        through_api.append(_latest_reward(tenant.merchant))
    assert through_woocommerce == through_api
    assert through_api == [("pending", Decimal("20.00")), ("pending", Decimal("15.00")), ("voided", Decimal("15"))]


def test_an_update_with_a_refund_before_the_order_itself_records_both_once(client, store):
    wc_post(client, store, wc_order(refunds=PARTIAL), topic="order.updated", delivery="9")  # the later event first
    wc_post(client, store, wc_order(), delivery="8")
    assert process_all(store.merchant) == ["processed", "processed"]
    conversion = Conversion.objects.for_merchant(store.merchant).get()
    assert (conversion.amount, conversion.refunded_amount) == (Decimal("200.00"), Decimal("50.00"))
    # The same refund in every later update is recorded once.
    wc_post(client, store, wc_order(refunds=FULL, status="refunded"), topic="order.updated")
    assert process_all(store.merchant) == ["processed"]
    assert Refund.objects.for_merchant(store.merchant).count() == 2
    assert Conversion.objects.for_merchant(store.merchant).get().refunded_amount == Decimal("200.00")


def test_a_paid_order_cancelled_refunds_what_remains(client, store):
    wc_post(client, store, wc_order(refunds=PARTIAL))
    wc_post(client, store, wc_order(refunds=PARTIAL, status="cancelled"), topic="order.updated")
    assert process_all(store.merchant) == ["processed", "processed"]
    conversion = Conversion.objects.for_merchant(store.merchant).get()
    assert conversion.refunded_amount == conversion.amount


# --- the store's API: check, coupons, reconciliation, webhooks -----------------------------------------------------


def test_testing_the_connection_calls_the_store_with_its_keys(store_api, httpserver):
    expect(httpserver, "/system_status").respond_with_json({"environment": {"version": "9.4.2", "site_url": "x"}})
    assert connection_check(connection=store_api) == "WooCommerce 9.4.2 at x"
    httpserver.check_assertions()


def test_keys_can_go_as_query_parameters_for_a_server_that_drops_the_authorization_header(merchant, httpserver):
    connection = shop_connection(
        merchant,
        provider="woocommerce",
        account=httpserver.url_for("").rstrip("/"),
        credentials=WooCommerce().credentials_from(f"{CK}:{CS}:query"),
    )
    httpserver.expect_request(
        "/wp-json/wc/v3/system_status", query_string={"consumer_key": CK, "consumer_secret": CS}
    ).respond_with_json({"environment": {"version": "9.4.2"}})
    assert "9.4.2" in connection_check(connection=connection)
    assert "Authorization" not in httpserver.log[0][0].headers


COUPON = Coupon(code="ANNA-X1", kind="amount", value=Decimal("12.99"), currency="PLN", title="Referral reward #7")


def test_a_coupon_is_created_with_one_use_once_per_customer(store_api, httpserver):
    ends = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
    expect(
        httpserver,
        "/coupons",
        "POST",
        json={
            "code": "ANNA-X1",
            "discount_type": "fixed_cart",
            "amount": "12.99",
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "description": "Referral reward #7",
            "date_expires_gmt": "2027-03-05T12:00:00",
        },
    ).respond_with_json({"id": 720, "code": "anna-x1"}, status=201)
    coupon = Coupon(**{**COUPON.__dict__, "ends_at": ends})
    assert WooCommerce().create_coupon(connection=store_api, coupon=coupon) == "ANNA-X1"
    httpserver.check_assertions()


def _exists() -> Response:
    body = {"code": "woocommerce_rest_coupon_code_already_exists", "message": "The coupon code already exists"}
    return Response(json.dumps(body), status=400, content_type="application/json")


def test_a_coupon_code_taken_by_our_lost_attempt_is_ours_and_one_taken_by_another_gets_a_suffix(store_api, httpserver):
    expect(httpserver, "/coupons", "POST").respond_with_response(_exists())
    expect(httpserver, "/coupons", query_string={"code": "ANNA-X1"}).respond_with_json(
        [{"id": 5, "code": "anna-x1", "description": "Summer sale"}]
    )
    expect(httpserver, "/coupons", "POST").respond_with_json({"id": 721, "code": "anna-x1-2"}, status=201)
    assert WooCommerce().create_coupon(connection=store_api, coupon=COUPON) == "ANNA-X1-2"
    httpserver.check_assertions()
    httpserver.clear()
    expect(httpserver, "/coupons", "POST").respond_with_response(_exists())
    expect(httpserver, "/coupons", query_string={"code": "ANNA-X1"}).respond_with_json(
        [{"id": 6, "code": "anna-x1", "description": "Referral reward #7"}]
    )
    assert WooCommerce().create_coupon(connection=store_api, coupon=COUPON) == "ANNA-X1"
    httpserver.check_assertions()


def test_the_store_down_is_a_transient_error(store_api, httpserver):
    httpserver.expect_request("/wp-json/wc/v3/coupons", method="POST").respond_with_data("", status=502)
    with pytest.raises(PlatformError) as down:
        WooCommerce().create_coupon(connection=store_api, coupon=COUPON)
    assert down.value.transient


def test_reconciliation_stores_the_orders_the_webhooks_missed_once(client, store_api, referrer, httpserver):
    delivered = wc_order()
    missed = wc_order(id=728, number="728", refunds=PARTIAL)
    wc_post(client, store_api, delivered)
    since = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    query = {"modified_after": "2026-12-05T17:00:00", "dates_are_gmt": "true", "orderby": "id", "order": "asc"}
    expect(httpserver, "/orders", query_string={**query, "per_page": "100", "page": "1"}).respond_with_json(
        [delivered, missed]
    )
    fetched = list(WooCommerce().reconcile(connection=store_api, since=since))
    httpserver.check_assertions()
    created = [
        inbound_event_store(connection=store_api, inbound=Inbound(f.event_id, f.topic, f.order_ref), body=f.body)[1]
        for f in fetched
    ]
    assert created == [False, True]  # the order the webhook brought is not stored twice
    assert process_all(store_api.merchant) == ["processed", "processed"]
    assert Conversion.objects.for_merchant(store_api.merchant).count() == 2
    assert Refund.objects.for_merchant(store_api.merchant).get().refund_id == "woocommerce:refund:730"


def test_connecting_creates_our_webhooks_and_disconnecting_deletes_them(store_api, httpserver):
    url = store_api.webhook_url
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json(
        [{"id": 3, "topic": "order.created", "delivery_url": "https://elsewhere.example/hook"}]
    )
    for topic in ("order.created", "order.updated"):
        expect(
            httpserver,
            "/webhooks",
            "POST",
            json={
                "name": f"Referral SaaS: {topic}",
                "topic": topic,
                "delivery_url": url,
                "secret": SECRET,
                "status": "active",
            },
        ).respond_with_json({"id": 20 if topic == "order.created" else 21}, status=201)
    assert connection_install_webhooks(merchant_id=store_api.merchant_id, connection_id=store_api.pk) == [
        "order.created",
        "order.updated",
    ]
    httpserver.check_assertions()
    httpserver.clear()
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json(
        [
            {"id": 3, "topic": "order.created", "delivery_url": "https://elsewhere.example/hook"},
            {"id": 20, "topic": "order.created", "delivery_url": url},
            {"id": 21, "topic": "order.updated", "delivery_url": url},
        ]
    )
    expect(httpserver, "/webhooks/20", "DELETE", query_string={"force": "true"}).respond_with_json({"id": 20})
    expect(httpserver, "/webhooks/21", "DELETE", query_string={"force": "true"}).respond_with_json({"id": 21})
    connection_disconnect(connection=store_api)
    httpserver.check_assertions()  # the merchant's own webhook (id 3) is left alone
    connection = Connection.objects.for_merchant(store_api.merchant).get()
    assert (connection.status, connection.credentials) == ("disconnected", {})


# --- one-click authorization --------------------------------------------------------------------------------------


def test_one_click_sends_the_merchant_to_the_stores_authorize_page(merchant, settings):
    settings.SITE_URL = "https://app.example"
    url = woocommerce_authorize_url(merchant=merchant, site="https://shop.example.pl/")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://shop.example.pl/wc-auth/v1/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert (query["app_name"], query["scope"]) == ("Referral SaaS", "read_write")
    assert query["callback_url"] == "https://app.example/integrations/woocommerce/authorized"
    assert signing.loads(query["user_id"], salt=AUTH_SALT) == {
        "m": merchant.pk,
        "s": "https://shop.example.pl",
        "l": True,
    }


def _approved(merchant, site: str, **changes) -> bytes:
    state = signing.dumps({"m": merchant.pk, "s": site, "l": True}, salt=AUTH_SALT, compress=True)
    body = {"key_id": 1, "user_id": state, "consumer_key": CK, "consumer_secret": CS, "key_permissions": "read_write"}
    return json.dumps({**body, **changes}).encode()


def test_the_stores_callback_stores_the_keys_encrypted_and_then_our_webhooks_are_created(client, merchant, httpserver):
    site = httpserver.url_for("").rstrip("/")
    response = client.post(
        "/integrations/woocommerce/authorized", data=_approved(merchant, site), content_type="application/json"
    )
    assert response.status_code == 200
    connection = Connection.objects.for_merchant(merchant).get()
    assert (connection.provider, connection.account) == ("woocommerce", site)
    assert (connection.credentials["consumer_key"], connection.credentials["consumer_secret"]) == (CK, CS)
    assert len(connection.webhook_secret) >= 32  # chosen by us, given to the store with each webhook
    raw = Connection.objects.for_merchant(merchant).values_list("credentials", flat=True).get()
    assert CS not in raw  # encrypted at rest
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json([])
    for _topic in ("order.created", "order.updated"):
        expect(httpserver, "/webhooks", "POST").respond_with_json({"id": 1}, status=201)
    # What the task the callback enqueued does:
    connection_install_webhooks(merchant_id=merchant.pk, connection_id=connection.pk)
    httpserver.check_assertions()
    assert json.loads(httpserver.log[1][0].get_data())["secret"] == connection.webhook_secret


def test_a_callback_we_did_not_start_or_with_bad_keys_is_refused(client, merchant):
    forged = signing.dumps({"m": merchant.pk, "s": "https://evil.example", "l": True}, salt="another")
    with pytest.raises(PermissionDeniedError):
        woocommerce_auth_callback(body=_approved(merchant, "https://shop.example.pl", user_id=forged))
    with pytest.raises(ValidationFailed):
        woocommerce_auth_callback(body=_approved(merchant, "https://shop.example.pl", key_permissions="read"))
    with pytest.raises(ValidationFailed):
        woocommerce_auth_callback(body=_approved(merchant, "https://shop.example.pl", consumer_secret="x"))
    response = client.post("/integrations/woocommerce/authorized", data=b"not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Connection.objects.for_merchant(merchant).exists()


# --- coupons before a reward is issued ------------------------------------------------------------------------------


def test_the_store_down_keeps_the_reward_approved_then_a_retry_issues_it_once_with_the_same_code(
    store_api, coupon_reward, httpserver
):
    expect(httpserver, "/coupons", "POST").respond_with_data("Bad gateway", status=502)
    reward = released(coupon_reward)
    assert (reward.status, reward.flag) == (Reward.Status.APPROVED, Reward.Flag.PLATFORM_PENDING)
    assert "502" in reward.reason
    drawn = reward.coupon_code
    sent = json.loads(httpserver.log[0][0].get_data())
    assert (sent["code"], sent["amount"], sent["usage_limit"], sent["usage_limit_per_user"]) == (drawn, "20.00", 1, 1)
    # The store created it after all, but its answer was lost: the retry finds the code taken, by this reward.
    expect(httpserver, "/coupons", "POST").respond_with_response(_exists())
    expect(httpserver, "/coupons", query_string={"code": drawn}).respond_with_json(
        [{"id": 9, "code": drawn.lower(), "description": f"Referral reward #{reward.pk}"}]
    )
    Reward.objects.for_merchant(reward.merchant_id).filter(pk=reward.pk).update(hold_until=timezone.now())
    reward = released(reward)
    assert (reward.status, reward.flag, reward.reason, reward.coupon_code) == (Reward.Status.ISSUED, "", "", drawn)
    assert released(reward).status == Reward.Status.ISSUED  # nothing more is sent
    assert len(httpserver.log) == 3


def test_pasting_keys_connects_and_creates_the_webhooks(merchant, httpserver):
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json([])
    expect(httpserver, "/webhooks", "POST").respond_with_json({"id": 20}, status=201)
    expect(httpserver, "/webhooks", "POST").respond_with_json({"id": 21}, status=201)
    connection, installed = connection_connect(
        merchant=merchant,
        provider="woocommerce",
        account=httpserver.url_for("/"),
        secret=SECRET,
        token=f"{CK}:{CS}",
    )
    assert installed == ["order.created", "order.updated"]
    httpserver.check_assertions()
    assert connection.credentials == {"consumer_key": CK, "consumer_secret": CS, "auth": "basic"}


def test_the_admins_one_click_page_sends_the_merchant_to_the_store(tenant):
    listing = tenant.admin.get("/admin/integrations/connection/")
    assert b'data-testid="woocommerce-connect"' in listing.content
    page = tenant.admin.get("/admin/integrations/connection/woocommerce/connect/")
    assert page.status_code == 200
    response = tenant.admin.post(
        "/admin/integrations/connection/woocommerce/connect/", {"site": "https://shop.example.pl"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.pl/wc-auth/v1/authorize?app_name=Referral+SaaS")
    query = {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}
    assert query["return_url"].endswith("/admin/integrations/connection/woocommerce/return/")
    # The store sends the merchant back with ?success=1&user_id=...: a message on the connections list.
    back = tenant.admin.get(f"{urlsplit(query['return_url']).path}?success=1&user_id=x", follow=True)
    assert back.redirect_chain[-1][0] == "/admin/integrations/connection/"
    assert "approved the connection" in back.content.decode()
    bad = tenant.admin.post("/admin/integrations/connection/woocommerce/connect/", {"site": "not a url"}, follow=True)
    assert "store's address" in bad.content.decode()


def test_connecting_again_gives_our_existing_webhooks_the_new_secret(store_api, httpserver):
    url = store_api.webhook_url
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json(
        [
            {"id": 20, "topic": "order.created", "delivery_url": url},
            {"id": 21, "topic": "order.updated", "delivery_url": url},
        ]
    )
    for webhook_id in (20, 21):
        expect(
            httpserver, f"/webhooks/{webhook_id}", "PUT", json={"secret": SECRET, "status": "active"}
        ).respond_with_json({"id": webhook_id})
    WooCommerce().install_webhooks(connection=store_api)
    httpserver.check_assertions()


def test_the_admins_connect_form_needs_a_secret_unless_we_make_the_webhooks(tenant, httpserver):
    form = {"provider": "woocommerce", "account": httpserver.url_for("/"), "livemode": "on", "secret": "", "token": ""}
    page = tenant.admin.post("/admin/integrations/connection/add/", form)
    assert page.status_code == 200  # no token: the form says what is missing
    assert "required" in page.content.decode()
    expect(httpserver, "/webhooks", query_string={"per_page": "100"}).respond_with_json([])
    expect(httpserver, "/webhooks", "POST").respond_with_json({"id": 20}, status=201)
    expect(httpserver, "/webhooks", "POST").respond_with_json({"id": 21}, status=201)
    response = tenant.admin.post("/admin/integrations/connection/add/", {**form, "token": f"{CK}:{CS}"})
    assert response.status_code == 302
    httpserver.check_assertions()
    connection = Connection.objects.for_merchant(tenant.merchant).get()
    assert len(connection.webhook_secret) >= 32
    assert json.loads(httpserver.log[1][0].get_data())["secret"] == connection.webhook_secret


def test_a_store_address_on_our_own_network_is_refused(merchant, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ValidationFailed):
        woocommerce_authorize_url(merchant=merchant, site="http://169.254.169.254/latest")
    connection = shop_connection(
        merchant,
        provider="woocommerce",
        account="http://127.0.0.1:9",
        credentials={"consumer_key": CK, "consumer_secret": CS},
    )
    with pytest.raises(PlatformError) as refused:
        WooCommerce().check(connection=connection)
    assert not refused.value.transient
    assert "refused" in str(refused.value)
    plain = shop_connection(
        merchant,
        provider="woocommerce",
        account="http://shop.example.pl",
        credentials={"consumer_key": CK, "consumer_secret": CS},
    )
    with pytest.raises(PlatformError, match="https only"):
        WooCommerce().check(connection=plain)
