"""Stripe: events written from Stripe's documented objects, signed here as Stripe signs them, posted to the real
endpoint; the API (coupons, events.list, refunds) answered by a real local HTTP server that checks each request."""

from __future__ import annotations

import copy
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from celery.signals import before_task_publish
from django.utils import timezone
from werkzeug import Response

from integrations.models import InboundEvent
from integrations.providers.base import Coupon
from integrations.providers.stripe import API_VERSION, Stripe, from_minor, sign, to_minor
from integrations.services import connection_check
from rewards.models import Reward
from rewards.services import refund_apply
from tests.factories import shop_connection
from tests.integrations.conftest import payload, process_all, released
from tests.rewards.helpers import order, process, rule
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db

SECRET = "whsec_5f0e1b2c3d4e5f60718293a4b5c6d7e8"
KEY = "rk_live_51QaZ0t2eZvKYlo2Cq1w2e3r4"
ACCOUNT = "acct_1QaZ0t2eZvKYlo2C"


def event(name: str, **changes) -> dict:
    """A documented sample event; `changes` go into its data.object."""
    data = copy.deepcopy(payload("stripe", name))
    obj = data["data"]["object"]
    obj["created"] = int(time.time()) - 60  # a payment of a minute ago (the program is live since today)
    if "status_transitions" in obj:
        obj["status_transitions"]["paid_at"] = obj["created"]
    obj.update(changes)
    return data


def stripe_post(client, connection, data: dict, *, secret: str = SECRET, timestamp: int | None = None):
    body = json.dumps(data).encode()
    return client.post(
        connection.webhook_path,
        data=body,
        content_type="application/json; charset=utf-8",
        headers={"Stripe-Signature": sign(secret, body, timestamp)},
    )


@pytest.fixture
def stripe_shop(merchant):
    """A Stripe account connected with its endpoint's signing secret only (no API key: nothing is asked of Stripe)."""
    return shop_connection(merchant, provider="stripe", account=ACCOUNT, secret=SECRET)


@pytest.fixture
def stripe_api(merchant, httpserver):
    """A Stripe account connected with a restricted key, its API at the local server (createconnection --base-url)."""
    return shop_connection(
        merchant,
        provider="stripe",
        account=ACCOUNT,
        secret=SECRET,
        credentials={"api_key": KEY},
        base_url=httpserver.url_for("").rstrip("/"),
    )


def expect(httpserver, path: str, method: str = "GET", **kwargs):
    """A request the server must get, with our key and the pinned API version."""
    headers = {"Authorization": f"Bearer {KEY}", "Stripe-Version": API_VERSION}
    return httpserver.expect_ordered_request(path, method=method, headers=headers, **kwargs)


# --- signatures ---------------------------------------------------------------------------------------------------


def test_a_bad_signature_is_401_and_nothing_is_stored(client, stripe_shop):
    response = stripe_post(client, stripe_shop, event("checkout_session_completed"), secret="whsec_other")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert not InboundEvent.objects.for_merchant(stripe_shop.merchant).exists()


def test_a_signature_older_than_five_minutes_is_a_replay_and_refused(client, stripe_shop):
    data = event("checkout_session_completed")
    assert stripe_post(client, stripe_shop, data, timestamp=int(time.time()) - 301).status_code == 401
    assert stripe_post(client, stripe_shop, data, timestamp=int(time.time()) - 200).status_code == 200


def test_a_body_changed_after_signing_is_refused(client, stripe_shop):
    body = json.dumps(event("checkout_session_completed")).encode()
    response = client.post(
        stripe_shop.webhook_path,
        data=body.replace(b"20000", b"90000"),
        content_type="application/json",
        headers={"Stripe-Signature": sign(SECRET, body)},
    )
    assert response.status_code == 401


# --- orders -------------------------------------------------------------------------------------------------------


def test_a_paid_checkout_becomes_one_order_attributed_by_client_reference_id(client, stripe_shop, referrer):
    anna, code = referrer
    data = event("checkout_session_completed", client_reference_id=code.code)
    first, again = stripe_post(client, stripe_shop, data), stripe_post(client, stripe_shop, data)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["duplicate"] is True
    assert process_all(stripe_shop.merchant) == ["processed"]
    conversion = Conversion.objects.for_merchant(stripe_shop.merchant).get()
    assert conversion.order_id == "stripe:pi_3QbCkP2eZvKYlo2C0x7Yq8Ab"
    # amount_subtotal 20000 groszy, after discounts, before the shipping and the tax the customer paid too
    assert (conversion.amount, conversion.currency) == (Decimal("200.00"), "PLN")
    assert conversion.referral.referrer == anna
    assert (conversion.customer_external_id, conversion.customer_email) == ("cus_R3fTqYtH8kZ2aN", "jon@example.com")


def test_the_snippets_click_id_in_the_metadata_attributes_the_order(client, stripe_shop, referrer):
    _anna, code = referrer
    data = event("checkout_session_completed", metadata={"ref": code.code, "plan": "pro"})
    stripe_post(client, stripe_shop, data)
    process_all(stripe_shop.merchant)
    assert Conversion.objects.for_merchant(stripe_shop.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_an_unpaid_checkout_waits_for_async_payment_succeeded(client, stripe_shop, program):
    unpaid = event("checkout_session_completed", payment_status="unpaid")
    stripe_post(client, stripe_shop, unpaid)
    assert process_all(stripe_shop.merchant) == ["ignored"]
    assert not Conversion.objects.for_merchant(stripe_shop.merchant).exists()
    succeeded = {
        **event("checkout_session_completed"),
        "id": "evt_async1",
        "type": "checkout.session.async_payment_succeeded",
    }
    stripe_post(client, stripe_shop, succeeded)
    assert process_all(stripe_shop.merchant) == ["processed"]
    assert Conversion.objects.for_merchant(stripe_shop.merchant).get().order_id == "stripe:pi_3QbCkP2eZvKYlo2C0x7Yq8Ab"


def test_a_checkout_that_made_an_invoice_and_its_invoice_paid_are_one_order(client, stripe_shop, referrer):
    _anna, code = referrer
    invoice = event("invoice_paid")
    invoice_id = invoice["data"]["object"]["id"]
    session = event(
        "checkout_session_completed",
        mode="subscription",
        payment_intent=None,
        invoice=invoice_id,
        subscription="sub_1QbCzy2eZvKYlo2CkLmN5678",
        client_reference_id=code.code,
        amount_subtotal=10000,
    )
    stripe_post(client, stripe_shop, session)
    stripe_post(client, stripe_shop, invoice)
    assert process_all(stripe_shop.merchant) == ["processed", "processed"]
    conversion = Conversion.objects.for_merchant(stripe_shop.merchant).get()
    assert conversion.order_id == f"stripe:{invoice_id}"
    assert conversion.amount == Decimal("100.00")  # total_excluding_tax
    assert conversion.status == Conversion.Status.ATTRIBUTED


def test_a_subscriptions_first_invoice_takes_the_attribution_of_its_checkout(client, stripe_api, referrer, httpserver):
    _anna, code = referrer
    expect(
        httpserver, "/v1/checkout/sessions", query_string={"subscription": "sub_1QbCzy2eZvKYlo2CkLmN5678", "limit": "1"}
    ).respond_with_json(
        {"object": "list", "data": [{"id": "cs_1", "client_reference_id": code.code}], "has_more": False}
    )
    stripe_post(client, stripe_api, event("invoice_paid"))
    assert process_all(stripe_api.merchant) == ["processed"]
    httpserver.check_assertions()
    assert Conversion.objects.for_merchant(stripe_api.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_a_promotion_code_that_is_a_referral_code_attributes_the_order(client, stripe_api, referrer, httpserver):
    _anna, code = referrer
    expect(httpserver, "/v1/promotion_codes/promo_1QbC").respond_with_json(
        {"id": "promo_1QbC", "object": "promotion_code", "code": code.code}
    )
    data = event("checkout_session_completed", discounts=[{"coupon": None, "promotion_code": "promo_1QbC"}])
    stripe_post(client, stripe_api, data)
    process_all(stripe_api.merchant)
    httpserver.check_assertions()
    assert Conversion.objects.for_merchant(stripe_api.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_a_zero_invoice_and_a_test_mode_event_on_a_live_connection_are_ignored(client, stripe_shop):
    stripe_post(client, stripe_shop, event("invoice_paid", amount_paid=0))
    stripe_post(client, stripe_shop, {**event("checkout_session_completed"), "livemode": False})
    assert process_all(stripe_shop.merchant) == ["ignored", "ignored"]


@pytest.mark.parametrize(
    ("currency", "minor", "amount"),
    [("JPY", 5000, Decimal("5000")), ("KWD", 12340, Decimal("12.340")), ("PLN", 1999, Decimal("19.99")),
     ("ISK", 150000, Decimal("1500.00")), ("UGX", 7000, Decimal("7000"))],
)  # fmt: skip
def test_stripe_amounts_are_read_with_stripes_exponent_for_the_currency(currency, minor, amount):
    assert from_minor(minor, currency) == amount
    assert to_minor(amount, currency) == minor


def test_a_yen_order_is_not_divided_by_a_hundred(client, stripe_shop, program):
    data = event("checkout_session_completed", currency="jpy", amount_subtotal=5000, amount_total=5500)
    stripe_post(client, stripe_shop, data)
    process_all(stripe_shop.merchant)
    conversion = Conversion.objects.for_merchant(stripe_shop.merchant).get()
    assert (conversion.amount, conversion.currency) == (Decimal("5000"), "JPY")


# --- refunds ------------------------------------------------------------------------------------------------------


def _refunded(amount_refunded: int, refunds: list[tuple[str, int]], event_id: str) -> dict:
    data = event(
        "charge_refunded",
        amount_refunded=amount_refunded,
        refunded=amount_refunded == 23370,
        refunds={"object": "list", "has_more": False, "data": [
            {"id": rid, "object": "refund", "amount": amount, "status": "succeeded", "reason": None}
            for rid, amount in refunds
        ]},
    )  # fmt: skip
    data["id"] = event_id
    return data


PARTIAL = [("re_1", 5842)]  # a quarter of the 233.70 PLN charged (with tax and shipping)
FULL = [("re_1", 5842), ("re_2", 17528)]


def _latest_reward(merchant) -> tuple[str, Decimal]:
    reward = Reward.objects.for_merchant(merchant).order_by("pk").last()
    return (reward.status, reward.value)


def _apply_refunds(merchant):
    for refund in Refund.objects.for_merchant(merchant).order_by("pk"):
        refund_apply(merchant=merchant, refund_id=refund.pk)


def test_order_then_partial_then_full_refund_rewards_as_the_api_does(client, tenant, program, referrer, stripe_shop):
    _anna, code = referrer
    rule(program)  # 10% of the order for the referrer
    stripe_post(client, stripe_shop, event("checkout_session_completed", client_reference_id=code.code))
    process_all(tenant.merchant)
    process(tenant, Conversion.objects.for_merchant(tenant.merchant).get().pk)
    through_stripe = [_latest_reward(tenant.merchant)]
    for amount_refunded, refunds, event_id in ((5842, PARTIAL, "evt_r1"), (23370, FULL, "evt_r2")):
        stripe_post(client, stripe_shop, _refunded(amount_refunded, refunds, event_id))
        process_all(tenant.merchant)
        _apply_refunds(tenant.merchant)
        through_stripe.append(_latest_reward(tenant.merchant))
    refunds = Refund.objects.for_merchant(tenant.merchant).order_by("pk")
    # Each refund pro-rated from what was charged to the order: 58.42 of 233.70 is 50.00 of 200.00.
    assert [(r.refund_id, r.amount) for r in refunds] == [
        ("stripe:re_1", Decimal("50.00")), ("stripe:re_2", Decimal("150.00"))
    ]  # fmt: skip

    # The same order through the shop API, refunded by the same amounts, for another friend of the same referrer.
    process(tenant, order(tenant, code, order_id="api-1", amount="200.00", friend="bob@example.org")["id"])
    through_api = [_latest_reward(tenant.merchant)]
    for refund_id, amount in (("r-1", "50.00"), ("r-2", "150.00")):
        tenant.api.post("/api/v1/conversions/api-1/refunds", {"amount": amount, "refund_id": refund_id}, format="json")
        _apply_refunds(tenant.merchant)
        through_api.append(_latest_reward(tenant.merchant))
    assert through_stripe == through_api
    assert through_stripe == [
        ("pending", Decimal("20.00")),
        ("pending", Decimal("15.00")),
        ("voided", Decimal("15.00")),
    ]


def test_the_same_refund_event_twice_and_the_full_refund_first_refund_once(client, stripe_shop):
    stripe_post(client, stripe_shop, event("checkout_session_completed"))
    stripe_post(client, stripe_shop, _refunded(23370, FULL, "evt_r2"))  # the later event first
    stripe_post(client, stripe_shop, _refunded(5842, PARTIAL, "evt_r1"))
    stripe_post(client, stripe_shop, _refunded(5842, PARTIAL, "evt_r1"))
    assert process_all(stripe_shop.merchant) == ["processed", "processed", "processed"]
    conversion = Conversion.objects.for_merchant(stripe_shop.merchant).get()
    assert conversion.refunded_amount == conversion.amount == Decimal("200.00")
    assert Refund.objects.for_merchant(stripe_shop.merchant).count() == 2


def test_a_refund_before_its_order_waits_and_is_applied_when_the_order_arrives(client, stripe_shop):
    stripe_post(client, stripe_shop, _refunded(5842, PARTIAL, "evt_r1"))
    assert process_all(stripe_shop.merchant) == ["waiting"]
    assert (
        InboundEvent.objects.for_merchant(stripe_shop.merchant).get().order_ref == "stripe:pi_3QbCkP2eZvKYlo2C0x7Yq8Ab"
    )
    stripe_post(client, stripe_shop, event("checkout_session_completed"))
    assert process_all(stripe_shop.merchant) == ["waiting", "processed"]  # the order wakes the refund
    assert process_all(stripe_shop.merchant) == ["processed"]
    assert Refund.objects.for_merchant(stripe_shop.merchant).get().amount == Decimal("50.00")


def test_a_charge_event_without_its_refunds_asks_stripe_for_them(client, stripe_api, httpserver):
    data = _refunded(5842, PARTIAL, "evt_r1")
    del data["data"]["object"]["refunds"]  # endpoints of API versions since 2022-11-15 do not send them
    query = {"charge": "ch_3QbCkP2eZvKYlo2C0Qw9XyZ1", "limit": "100"}
    listed = {"object": "list", "has_more": False, "data": [{"id": "re_1", "amount": 5842, "status": "succeeded"}]}
    expect(httpserver, "/v1/refunds", query_string=query).respond_with_json(listed)
    stripe_post(client, stripe_api, event("checkout_session_completed"))
    stripe_post(client, stripe_api, data)
    assert process_all(stripe_api.merchant) == ["processed", "processed"]
    httpserver.check_assertions()
    assert Refund.objects.for_merchant(stripe_api.merchant).get().amount == Decimal("50.00")


def test_a_refunded_invoice_payment_is_found_through_stripes_invoice_payments(client, stripe_api, httpserver):
    invoice = event("invoice_paid")
    expect(httpserver, "/v1/checkout/sessions").respond_with_json({"object": "list", "data": []})  # no attribution
    expect(
        httpserver,
        "/v1/invoice_payments",
        query_string={"payment[type]": "payment_intent", "payment[payment_intent]": "pi_sub", "limit": "1"},
    ).respond_with_json({"object": "list", "data": [{"id": "inpay_1", "invoice": invoice["data"]["object"]["id"]}]})
    refund = _refunded(12300, [("re_9", 12300)], "evt_r9")
    refund["data"]["object"].update(amount=12300, payment_intent="pi_sub")
    stripe_post(client, stripe_api, invoice)
    process_all(stripe_api.merchant)
    stripe_post(client, stripe_api, refund)
    assert process_all(stripe_api.merchant) == ["processed"]
    conversion = Conversion.objects.for_merchant(stripe_api.merchant).get()
    assert conversion.refunded_amount == conversion.amount == Decimal("100.00")


def test_a_refund_of_an_invoice_payment_before_its_invoice_is_woken_by_the_invoice(
    client, stripe_api, httpserver, django_capture_on_commit_callbacks
):
    invoice = event("invoice_paid")
    invoice_ref = f"stripe:{invoice['data']['object']['id']}"
    # Asked as often as the waiting refund is tried: answered every time (not once, in order, as by expect()).
    httpserver.expect_request("/v1/checkout/sessions").respond_with_json({"object": "list", "data": []})
    httpserver.expect_request("/v1/invoice_payments").respond_with_json(
        {"object": "list", "data": [{"id": "inpay_1", "invoice": invoice["data"]["object"]["id"]}]}
    )
    refund = _refunded(12300, [("re_9", 12300)], "evt_r9")
    refund["data"]["object"].update(amount=12300, payment_intent="pi_sub")  # names no invoice (API since 2025-03)
    stripe_post(client, stripe_api, refund)
    assert process_all(stripe_api.merchant) == ["waiting"]
    waiting = InboundEvent.objects.for_merchant(stripe_api.merchant).get()
    assert waiting.order_ref == invoice_ref  # stored under "stripe:pi_sub", waits under the invoice Stripe named

    published = []

    def record(sender=None, body=None, **_kwargs):
        published.append((sender, body[1] if isinstance(body, tuple) else body))

    stripe_post(client, stripe_api, invoice)
    before_task_publish.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert process_all(stripe_api.merchant)[-1] == "processed"  # the invoice
    finally:
        before_task_publish.disconnect(record)
    assert ("integrations.process_event", {"merchant_id": stripe_api.merchant.pk, "event_id": waiting.pk}) in [
        (name, kwargs) for name, kwargs in published
    ]  # the invoice woke the refund at once, not at its next retry


# --- the API: connection check, coupons, reconciliation -----------------------------------------------------------


def test_testing_the_connection_reads_events_with_the_key_at_the_pinned_version(stripe_api, httpserver):
    expect(httpserver, "/v1/events", query_string={"limit": "1"}).respond_with_json({"object": "list", "data": []})
    assert "acct_1QaZ0t2eZvKYlo2C" in connection_check(connection=stripe_api)
    httpserver.check_assertions()


def _form(request) -> dict:
    return {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}


def test_a_coupon_is_a_one_use_coupon_and_its_promotion_code(stripe_api, httpserver):
    sent = []

    def answer(obj):
        def handler(request):
            sent.append((request.path, _form(request)))
            return Response(json.dumps(obj), content_type="application/json")

        return handler

    expect(httpserver, "/v1/coupons", "POST").respond_with_handler(answer({"id": "rs-ANNA-X1", "object": "coupon"}))
    expect(httpserver, "/v1/promotion_codes", "POST").respond_with_handler(answer({"id": "promo_1", "code": "ANNA-X1"}))
    coupon = Coupon(code="ANNA-X1", kind="amount", value=Decimal("12.99"), currency="PLN", title="Referral reward #7")
    assert Stripe().create_coupon(connection=stripe_api, coupon=coupon) == "ANNA-X1"
    httpserver.check_assertions()
    assert sent == [
        ("/v1/coupons", {
            "id": "rs-ANNA-X1", "name": "Referral reward #7", "duration": "once", "max_redemptions": "1",
            "metadata[referral_saas]": "Referral reward #7", "amount_off": "1299", "currency": "pln",
        }),
        ("/v1/promotion_codes", {
            "promotion[type]": "coupon", "promotion[coupon]": "rs-ANNA-X1", "code": "ANNA-X1", "max_redemptions": "1",
            "metadata[referral_saas]": "Referral reward #7",
        }),
    ]  # fmt: skip


def _stripe_error(status: int, code: str, message: str, param: str = "") -> Response:
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}}
    return Response(json.dumps(body), status=status, content_type="application/json")


def test_a_coupon_created_by_an_attempt_whose_answer_was_lost_is_reused(stripe_api, httpserver):
    expect(httpserver, "/v1/coupons", "POST").respond_with_response(
        _stripe_error(400, "resource_already_exists", "Coupon already exists.", "id")
    )
    expect(httpserver, "/v1/promotion_codes", "POST").respond_with_response(
        _stripe_error(
            400, "duplicate_promotion_code", "An active promotion code with `code: ANNA-X1` already exists.", "code"
        )
    )
    expect(httpserver, "/v1/promotion_codes", query_string={"code": "ANNA-X1", "limit": "10"}).respond_with_json(
        {
            "object": "list",
            "data": [{"id": "promo_1", "code": "ANNA-X1", "promotion": {"type": "coupon", "coupon": "rs-ANNA-X1"}}],
        }
    )
    coupon = Coupon(code="ANNA-X1", kind="percent", value=Decimal("10"), currency="PLN", title="Referral reward #7")
    assert Stripe().create_coupon(connection=stripe_api, coupon=coupon) == "ANNA-X1"
    httpserver.check_assertions()


def test_stripe_down_is_a_transient_error_and_a_refusal_is_not(stripe_api, httpserver):
    from integrations.http import PlatformError

    coupon = Coupon(code="ANNA-X1", kind="percent", value=Decimal("10"), currency="PLN", title="Referral reward #7")
    httpserver.expect_request("/v1/coupons", method="POST").respond_with_data("down", status=503)
    with pytest.raises(PlatformError) as down:
        Stripe().create_coupon(connection=stripe_api, coupon=coupon)
    assert down.value.transient
    httpserver.clear()
    httpserver.expect_request("/v1/coupons", method="POST").respond_with_response(
        _stripe_error(401, "", "Invalid API Key provided")
    )
    with pytest.raises(PlatformError) as refused:
        Stripe().create_coupon(connection=stripe_api, coupon=coupon)
    assert not refused.value.transient


def test_reconciliation_stores_the_events_the_webhooks_missed_once(client, stripe_api, referrer, httpserver):
    delivered = event("checkout_session_completed")
    missed = {**event("invoice_paid"), "id": "evt_missed"}
    stripe_post(client, stripe_api, delivered)
    page = {"object": "list", "has_more": True, "data": [missed]}
    expect(httpserver, "/v1/events", query_string={
        "created[gte]": "1764900000", "types[0]": "checkout.session.completed",
        "types[1]": "checkout.session.async_payment_succeeded", "types[2]": "invoice.paid",
        "types[3]": "charge.refunded",
        "limit": "100",
    }).respond_with_json(page)  # fmt: skip
    expect(httpserver, "/v1/events").respond_with_json({"object": "list", "has_more": False, "data": [delivered]})
    expect(httpserver, "/v1/checkout/sessions").respond_with_json({"object": "list", "data": []})
    from datetime import UTC, datetime

    fetched = list(Stripe().reconcile(connection=stripe_api, since=datetime.fromtimestamp(1764900000, UTC)))
    assert [f.event_id for f in fetched] == ["evt_missed", delivered["id"]]
    assert httpserver.log[1][0].args["starting_after"] == "evt_missed"
    from integrations.providers.base import Inbound
    from integrations.services import inbound_event_store

    created = [
        inbound_event_store(connection=stripe_api, inbound=Inbound(f.event_id, f.topic, f.order_ref), body=f.body)[1]
        for f in fetched
    ]
    assert created == [True, False]  # the webhook's event is not stored twice
    assert process_all(stripe_api.merchant) == ["processed", "processed"]
    assert Conversion.objects.for_merchant(stripe_api.merchant).count() == 2


def test_createconnection_connects_stripe_with_a_restricted_key(tenant, httpserver):
    from io import StringIO

    from django.core.management import call_command

    from integrations.models import Connection

    out = StringIO()
    call_command(
        "createconnection", "--merchant", tenant.merchant.slug, "--provider", "stripe", "--account", ACCOUNT,
        "--secret", SECRET, "--token", KEY, "--base-url", httpserver.url_for("/"), "--json", stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    connection = Connection.objects.for_merchant(tenant.merchant).get(pk=result["id"])
    assert (connection.provider, connection.credentials, connection.webhook_secret) == (
        "stripe",
        {"api_key": KEY},
        SECRET,
    )
    assert result["webhook_url"].endswith(f"/integrations/stripe/{connection.inbound_token}/webhook")


def test_stripe_orders_of_another_merchant_stay_theirs(client, stripe_shop, other_tenant):
    stripe_post(client, stripe_shop, event("checkout_session_completed"))
    process_all(stripe_shop.merchant)
    assert not Conversion.objects.for_merchant(other_tenant.merchant).exists()


# --- coupons before a reward is issued ------------------------------------------------------------------------------


def test_stripe_down_keeps_the_reward_approved_then_a_retry_issues_it_once_with_the_same_code(
    stripe_api, coupon_reward, httpserver
):
    expect(httpserver, "/v1/coupons", "POST").respond_with_data("upstream down", status=503)
    reward = released(coupon_reward)
    assert (reward.status, reward.flag) == (Reward.Status.APPROVED, Reward.Flag.PLATFORM_PENDING)
    assert "APIError" in reward.reason
    drawn = reward.coupon_code
    assert len(httpserver.log) == 1  # Stripe's own retries are off: ours come later, not in this worker
    # Stripe created the coupon after all, but its answer was lost: the retry reuses it, then makes the code.
    expect(httpserver, "/v1/coupons", "POST").respond_with_response(
        _stripe_error(400, "resource_already_exists", "Coupon already exists.", "id")
    )
    expect(httpserver, "/v1/promotion_codes", "POST").respond_with_json({"id": "promo_9", "code": drawn})
    Reward.objects.for_merchant(reward.merchant_id).filter(pk=reward.pk).update(hold_until=timezone.now())
    reward = released(reward)
    assert (reward.status, reward.flag, reward.reason, reward.coupon_code) == (Reward.Status.ISSUED, "", "", drawn)
    assert released(reward).status == Reward.Status.ISSUED  # nothing more is sent
    assert len(httpserver.log) == 3
    sent = {k: v[0] for k, v in parse_qs(httpserver.log[2][0].get_data(as_text=True)).items()}
    assert (sent["code"], sent["promotion[coupon]"], sent["max_redemptions"]) == (drawn, f"rs-{drawn}", "1")


def test_connecting_with_a_key_only_creates_our_endpoint_and_keeps_its_secret(client, merchant, httpserver):
    from integrations.services import connection_connect, connection_disconnect

    empty = {"object": "list", "data": [], "has_more": False}
    expect(httpserver, "/v1/webhook_endpoints", query_string={"limit": "100"}).respond_with_json(empty)
    created = {"id": "we_1", "object": "webhook_endpoint", "secret": "whsec_fromstripe", "url": "x"}
    expect(httpserver, "/v1/webhook_endpoints", "POST").respond_with_json(created)
    connection, installed = connection_connect(
        merchant=merchant, provider="stripe", account=ACCOUNT, secret="", token=KEY, base_url=httpserver.url_for("/")
    )
    assert installed == ["checkout.session.completed", "checkout.session.async_payment_succeeded", "invoice.paid",
                         "charge.refunded"]  # fmt: skip
    sent = {k: v[0] for k, v in parse_qs(httpserver.log[1][0].get_data(as_text=True)).items()}
    assert sent == {
        "url": connection.webhook_url, "api_version": API_VERSION, "description": "Referral SaaS: orders and refunds",
        "enabled_events[0]": "checkout.session.completed",
        "enabled_events[1]": "checkout.session.async_payment_succeeded",
        "enabled_events[2]": "invoice.paid", "enabled_events[3]": "charge.refunded",
    }  # fmt: skip
    connection.refresh_from_db()
    assert connection.webhook_secret == "whsec_fromstripe"
    assert (
        stripe_post(client, connection, event("checkout_session_completed"), secret="whsec_fromstripe").status_code
        == 200
    )
    # Disconnecting deletes our endpoint, and only ours.
    listed = {"object": "list", "has_more": False, "data": [
        {"id": "we_0", "object": "webhook_endpoint", "url": "https://merchant.example/hook"},
        {"id": "we_1", "object": "webhook_endpoint", "url": connection.webhook_url},
    ]}  # fmt: skip
    expect(httpserver, "/v1/webhook_endpoints", query_string={"limit": "100"}).respond_with_json(listed)
    expect(httpserver, "/v1/webhook_endpoints/we_1", "DELETE").respond_with_json({"id": "we_1", "deleted": True})
    connection_disconnect(connection=connection)
    httpserver.check_assertions()
