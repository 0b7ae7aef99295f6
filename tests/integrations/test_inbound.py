"""The inbound endpoint: signature, storage once per event, fast answers; and the worker's processing of the stored
events into orders and refunds through the shop API's own services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from integrations.models import Connection, InboundEvent
from integrations.services import connection_create, inbound_event_replay, inbound_events_sweep
from tests.integrations.conftest import payload, process_all, shopify_post
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db


def test_a_bad_signature_is_401_and_nothing_is_stored(client, shopify):
    response = shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"), secret="not-hush")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert not InboundEvent.objects.for_merchant(shopify.merchant).exists()


def test_a_missing_signature_is_401(client, shopify):
    response = client.post(
        shopify.webhook_path, data=b"{}", content_type="application/json", headers={"X-Shopify-Topic": "orders/paid"}
    )
    assert response.status_code == 401


def test_an_unknown_token_or_platform_is_a_json_404(client, shopify):
    unknown = client.post("/integrations/shopify/nope/webhook", data=b"{}", content_type="application/json")
    assert unknown.status_code == 404
    wrong_platform = shopify.webhook_path.replace("/shopify/", "/stripe/")
    response = client.post(wrong_platform, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_get_is_405(client, shopify):
    assert client.get(shopify.webhook_path).status_code == 405


def test_a_signed_event_for_another_shop_of_the_app_is_refused(client, shopify):
    other_shop = {"X-Shopify-Shop-Domain": "x.myshopify.com"}
    response = shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"), **other_shop)
    assert response.status_code == 401


def test_an_event_is_stored_raw_and_answered_at_once_then_the_same_event_again_is_stored_once(client, shopify):
    data = payload("shopify", "orders_paid")
    first = shopify_post(client, shopify, "orders/paid", data)
    again = shopify_post(client, shopify, "orders/paid", data, event_id="another-delivery-id")
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    event = InboundEvent.objects.for_merchant(shopify.merchant).get()
    assert event.status == InboundEvent.Status.RECEIVED
    assert (event.topic, event.event_id) == ("orders/paid", f"orders/paid:{data['id']}")
    assert bytes(event.body) == first.wsgi_request.body  # the raw body, byte for byte
    assert event.order_ref == f"shopify:{data['id']}"
    assert Connection.objects.for_merchant(shopify.merchant).get().last_event_at is not None
    # Processed once, by the worker's service: one conversion however often the platform sends it.
    assert process_all(shopify.merchant) == ["processed"]
    shopify_post(client, shopify, "orders/paid", data)
    assert process_all(shopify.merchant) == []
    assert Conversion.objects.for_merchant(shopify.merchant).count() == 1


def test_the_previous_secret_is_accepted_until_it_expires(client, shopify):
    connection, created = connection_create(
        merchant=shopify.merchant, provider="shopify", account=shopify.account, secret="new-secret"
    )
    assert not created
    data = payload("shopify", "orders_paid")
    assert shopify_post(client, connection, "orders/paid", data, secret="new-secret").status_code == 200
    assert shopify_post(client, connection, "orders/paid", {**data, "id": 2}, secret="hush").status_code == 200
    Connection.objects.for_merchant(connection.merchant).filter(pk=connection.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert shopify_post(client, connection, "orders/paid", {**data, "id": 3}, secret="hush").status_code == 401


def test_a_paid_order_becomes_a_conversion_attributed_by_the_snippets_cart_attribute(client, shopify, referrer):
    anna, code = referrer
    data = payload("shopify", "orders_paid", note_attributes=[{"name": "ref", "value": code.code.lower()}])
    shopify_post(client, shopify, "orders/paid", data)
    assert process_all(shopify.merchant) == ["processed"]
    conversion = Conversion.objects.for_merchant(shopify.merchant).get()
    assert conversion.order_id == f"shopify:{data['id']}"
    assert (conversion.amount, conversion.currency) == (Decimal("200.00"), "PLN")  # after discounts, no shipping
    assert conversion.status == Conversion.Status.ATTRIBUTED
    assert conversion.referral.referrer == anna
    assert conversion.customer_external_id == "115310627314723954"
    assert conversion.customer_email == "jon@example.com"
    assert conversion.ip == "203.0.113.7"


def test_a_referral_code_typed_as_a_discount_code_attributes_the_order(client, shopify, referrer):
    _anna, code = referrer
    data = payload("shopify", "orders_paid", discount_codes=[{"code": "WELCOME10"}, {"code": code.code}])
    shopify_post(client, shopify, "orders/paid", data)
    process_all(shopify.merchant)
    assert Conversion.objects.for_merchant(shopify.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_the_landing_pages_ref_attributes_the_order(client, shopify, referrer):
    _anna, code = referrer
    data = payload("shopify", "orders_paid", landing_site=f"/products/x?ref={code.code}&utm_source=a")
    shopify_post(client, shopify, "orders/paid", data)
    process_all(shopify.merchant)
    assert Conversion.objects.for_merchant(shopify.merchant).get().status == Conversion.Status.ATTRIBUTED


def test_a_stale_click_id_or_unknown_code_still_records_the_order(client, shopify, program):
    data = payload(
        "shopify",
        "orders_paid",
        note_attributes=[
            {"name": "rs_click", "value": "3f2b8a8e-1111-4a4a-9a9a-000000000000"},
            {"name": "ref", "value": "NOBODY-1234"},
        ],
    )
    shopify_post(client, shopify, "orders/paid", data)
    assert process_all(shopify.merchant) == ["processed"]
    assert Conversion.objects.for_merchant(shopify.merchant).get().status == Conversion.Status.UNATTRIBUTED


def test_a_refund_before_its_order_waits_and_is_applied_when_the_order_arrives(client, shopify, referrer):
    shopify_post(client, shopify, "refunds/create", payload("shopify", "refunds_create"))
    assert process_all(shopify.merchant) == ["waiting"]
    refund_event = InboundEvent.objects.for_merchant(shopify.merchant).get()
    assert "has not arrived" in refund_event.error
    assert refund_event.next_attempt_at is not None
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    assert process_all(shopify.merchant) == ["waiting", "processed"]  # the order wakes the refund (a new task)
    assert process_all(shopify.merchant) == ["processed"]
    refund = Refund.objects.for_merchant(shopify.merchant).get()
    assert refund.amount == Decimal("50.00")  # the successful refund transaction; the failed one is not money back
    assert refund.refund_id == "shopify:refund:890088186047892319"


def test_a_cancelled_order_refunds_what_remains_once(client, shopify):
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    shopify_post(client, shopify, "refunds/create", payload("shopify", "refunds_create"))
    process_all(shopify.merchant)
    shopify_post(client, shopify, "orders/cancelled", payload("shopify", "orders_cancelled"))
    assert process_all(shopify.merchant) == ["processed"]
    conversion = Conversion.objects.for_merchant(shopify.merchant).get()
    assert conversion.refunded_amount == conversion.amount == Decimal("200.00")
    assert Refund.objects.for_merchant(shopify.merchant).count() == 2


def test_a_refund_larger_than_the_order_takes_back_what_remains(client, shopify):
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    refund = payload("shopify", "refunds_create")
    refund["transactions"][0]["amount"] = "229.99"  # shipping too
    shopify_post(client, shopify, "refunds/create", refund)
    process_all(shopify.merchant)
    assert Conversion.objects.for_merchant(shopify.merchant).get().refunded_amount == Decimal("200.00")


def test_an_unreadable_event_fails_visibly_and_a_replay_processes_it_again(client, shopify):
    data = payload("shopify", "orders_paid")
    del data["current_subtotal_price_set"], data["current_subtotal_price"], data["subtotal_price"]
    shopify_post(client, shopify, "orders/paid", data)
    assert process_all(shopify.merchant) == ["failed"]
    event = InboundEvent.objects.for_merchant(shopify.merchant).get()
    assert event.status == InboundEvent.Status.FAILED
    assert "subtotal_price" in event.error
    assert event.next_attempt_at is None  # retrying cannot help: it waits for a person
    assert "subtotal_price" in Connection.objects.for_merchant(shopify.merchant).get().last_error
    inbound_event_replay(event=event)
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.RECEIVED


def test_a_topic_we_do_not_use_is_ignored(client, shopify):
    shopify_post(client, shopify, "orders/create", payload("shopify", "orders_paid"))
    assert process_all(shopify.merchant) == ["ignored"]


def test_orders_of_a_disconnected_shop_are_ignored(client, shopify):
    Connection.objects.for_merchant(shopify.merchant).filter(pk=shopify.pk).update(status="disconnected")
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    assert process_all(shopify.merchant) == ["ignored"]
    assert not Conversion.objects.for_merchant(shopify.merchant).exists()


def test_the_sweeper_sends_again_events_whose_message_was_lost(client, shopify, merchant):
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    assert inbound_events_sweep() == []  # just received: its message is on its way
    InboundEvent.objects.for_merchant(merchant).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert len(inbound_events_sweep()) == 1
    assert inbound_events_sweep() == []  # not again while a worker has it


def test_events_of_another_merchant_stay_theirs(client, shopify, other_tenant):
    shopify_post(client, shopify, "orders/paid", payload("shopify", "orders_paid"))
    assert not InboundEvent.objects.for_merchant(other_tenant.merchant).exists()
