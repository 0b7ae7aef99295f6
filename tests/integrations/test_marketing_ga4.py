"""Google Analytics 4 against a real local HTTP server: an attributed order reported with the buyer's GA client id
is a referral_purchase Measurement Protocol event with its value and currency, a friend's sign-up a
referral_signup; without a client id nothing is sent; the admin's "validate" uses the debug endpoint."""

from __future__ import annotations

import pytest

from integrations.models import Connection
from rewards.services import conversion_process, referral_process
from tests.integrations.marketing import marketing_connection, sync_all, syncs
from tests.rewards.helpers import order

pytestmark = pytest.mark.django_db

QUERY = "measurement_id=G-TEST123&api_secret=mp-secret"


def connect(merchant, httpserver):
    return marketing_connection(merchant, "ga4", httpserver, account="G-TEST123", secret="mp-secret")


def test_an_attributed_order_with_a_ga_client_id_is_a_referral_purchase_event(tenant, referrer, httpserver):
    _anna, code = referrer
    connection = connect(tenant.merchant, httpserver)
    conversion = order(tenant, code, order_id="GA-1", amount="129.90", ga_client_id="1234567890.1712345678")
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])
    httpserver.expect_ordered_request(
        "/mp/collect",
        method="POST",
        query_string=QUERY,
        json={
            "client_id": "1234567890.1712345678",
            "events": [
                {
                    "name": "referral_purchase",
                    "params": {
                        "currency": "PLN",
                        "value": 129.9,
                        "transaction_id": "GA-1",
                        "referral_code": code.code,
                    },
                }
            ],
        },
    ).respond_with_data("", status=204)

    sync_all(connection)

    httpserver.check_assertions()
    assert [s.key for s in syncs(connection, status="sent")] == [f"conversion.attributed:{conversion['id']}"]
    # The order opened the referral too (no sign-up before it): no client id came with a sign-up, none is sent.
    assert [s.event_type for s in syncs(connection, status="skipped")] == ["referral.created"]


def test_a_friends_sign_up_is_a_referral_signup_and_without_a_client_id_nothing_is_sent(tenant, referrer, httpserver):
    _anna, code = referrer
    connection = connect(tenant.merchant, httpserver)
    httpserver.expect_request("/mp/collect", method="POST", query_string=QUERY).respond_with_data("", status=204)
    signed = tenant.api.post(
        "/api/v1/referrals",
        {"code": code.code, "customer": {"email": "friend@example.org"}, "ga_client_id": "55.66"},
        format="json",
    )
    assert signed.status_code == 201, signed.content
    referral_process(merchant=tenant.merchant, referral_id=signed.json()["id"])
    conversion = order(tenant, code, order_id="GA-2", friend="other@example.org")  # no client id
    conversion_process(merchant=tenant.merchant, conversion_id=conversion["id"])

    sync_all(connection)

    bodies = [r.get_json() for r, _resp in httpserver.log]
    assert [(b["client_id"], b["events"][0]["name"]) for b in bodies] == [("55.66", "referral_signup")]
    assert bodies[0]["events"][0]["params"] == {"referral_code": code.code, "program": "friends"}
    skipped = syncs(connection, status="skipped")  # the order without a client id (and the referral it opened)
    assert {s.event_type for s in skipped} == {"conversion.attributed", "referral.created"}
    assert {s.last_error for s in skipped} == {"no Google Analytics client id was sent with it"}


def test_a_malformed_client_id_is_refused_by_the_api(tenant, referrer):
    _anna, code = referrer
    response = tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "X", "amount": "1.00", "currency": "PLN", "code": code.code, "ga_client_id": "GA1.1.<x>"},
        format="json",
    )
    assert response.status_code == 400
    assert "ga_client_id" in response.json()["error"]["fields"]


def test_validate_in_the_admin_sends_a_sample_to_the_debug_endpoint_and_shows_what_ga4_says(tenant, httpserver):
    connection = connect(tenant.merchant, httpserver)
    httpserver.expect_oneshot_request("/debug/mp/collect", method="POST", query_string=QUERY).respond_with_json(
        {
            "validationMessages": [
                {"fieldPath": "events", "description": "Event name is reserved.", "validationCode": "NAME_RESERVED"}
            ]
        }
    )
    httpserver.expect_oneshot_request("/debug/mp/collect", method="POST", query_string=QUERY).respond_with_json(
        {"validationMessages": []}
    )
    changelist = "/admin/integrations/connection/"

    refused = tenant.admin.post(
        changelist, {"action": "validate_ga4", "_selected_action": [connection.pk]}, follow=True
    )
    accepted = tenant.admin.post(
        changelist, {"action": "validate_ga4", "_selected_action": [connection.pk]}, follow=True
    )

    assert "Event name is reserved." in refused.content.decode()
    assert "GA4 accepts our events." in accepted.content.decode()
    sample = httpserver.log[0][0].get_json()
    assert sample["events"][0]["name"] == "referral_purchase"
    assert Connection.objects.for_merchant(tenant.merchant).get(pk=connection.pk).last_error == ""


def test_a_shopify_order_carries_the_ga_client_id_of_its_cart_attributes(tenant, referrer, client, httpserver):
    from integrations.models import InboundEvent
    from tests.factories import shop_connection
    from tests.integrations.conftest import payload, process_all, shopify_post
    from tracking.models import Conversion

    _anna, code = referrer
    shop = shop_connection(tenant.merchant, account="ga.myshopify.com", secret="hush")
    data = payload(
        "shopify",
        "orders_paid",
        note_attributes=[{"name": "_ref", "value": code.code}, {"name": "_ga_client_id", "value": "42.1712345678"}],
    )
    assert shopify_post(client, shop, "orders/paid", data).status_code == 200
    process_all(tenant.merchant)

    assert InboundEvent.objects.for_merchant(tenant.merchant).get().status == "processed"
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(order_id=f"shopify:{data['id']}")
    assert conversion.ga_client_id == "42.1712345678"
