"""Zapier REST hooks through the shop API: a Zap subscribes its target URL to one event with the API key, the event
arrives signed at the target (a real local HTTP server), 410 Gone from the target removes the subscription (a shop's
own endpoint is only turned off), unsubscribing deletes it, and the sample endpoint shows the event's shape. Another
merchant's key sees none of it."""

from __future__ import annotations

import pytest

from referral_saas.webhooks.models import WebhookDelivery, WebhookEndpoint
from referral_saas.webhooks.services import delivery_attempt
from tests.integrations.marketing import joins

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_targets(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


def deliver_all(merchant) -> list:
    deliveries = WebhookDelivery.objects.for_merchant(merchant).order_by("pk").values_list("pk", flat=True)
    return [delivery_attempt(merchant_id=merchant.pk, delivery_id=pk) for pk in deliveries]


def test_a_subscribed_hook_gets_its_event_signed_and_410_removes_the_subscription(tenant, program, httpserver):
    target = httpserver.url_for("/hooks/standard/1/abc/")
    created = tenant.api.post("/api/v1/hooks", {"target_url": target, "event": "participant.created"}, format="json")
    assert created.status_code == 201, created.content
    hook = created.json()
    assert (hook["target_url"], hook["event"]) == (target, "participant.created")
    httpserver.expect_oneshot_request("/hooks/standard/1/abc/", method="POST").respond_with_json({"status": "ok"})
    httpserver.expect_oneshot_request("/hooks/standard/1/abc/", method="POST").respond_with_data("", status=410)

    participant, _code = joins(program, email="zap@example.com", consent=False)
    assert deliver_all(tenant.merchant) == ["succeeded"]
    request = httpserver.log[0][0]
    assert request.get_json()["type"] == "participant.created"
    assert request.get_json()["data"]["id"] == participant.pk
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= {
        name.lower() for name, _value in request.headers.items()
    }

    joins(program, email="zap-2@example.com")
    deliver_all(tenant.merchant)
    assert [r.path for r, _resp in httpserver.log] == ["/hooks/standard/1/abc/"] * 2
    assert not WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=hook["id"]).exists()
    assert not WebhookDelivery.objects.for_merchant(tenant.merchant).exists()  # nothing left to retry

    # Gone for good: the next event is sent nowhere, and Zapier's own unsubscribe finds nothing.
    joins(program, email="zap-3@example.com")
    assert deliver_all(tenant.merchant) == []
    assert len(httpserver.log) == 2
    assert tenant.api.delete(f"/api/v1/hooks/{hook['id']}").status_code == 404


def test_410_from_a_shops_own_endpoint_still_only_turns_it_off(tenant, program, httpserver):
    target = httpserver.url_for("/own/")
    plain = tenant.api.post("/api/v1/webhook-endpoints", {"url": target}, format="json").json()
    httpserver.expect_request("/own/", method="POST").respond_with_data("", status=410)

    joins(program, email="own@example.com")
    deliver_all(tenant.merchant)

    endpoint = WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=plain["id"])
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")


def test_unsubscribing_deletes_the_hook_and_only_hooks_can_be_unsubscribed(tenant, other_tenant, httpserver):
    target = httpserver.url_for("/hooks/x/")
    hook = tenant.api.post("/api/v1/hooks", {"target_url": target, "event": "reward.issued"}, format="json").json()
    plain = tenant.api.post("/api/v1/webhook-endpoints", {"url": target}, format="json").json()

    assert other_tenant.api.delete(f"/api/v1/hooks/{hook['id']}").status_code == 404
    assert tenant.api.delete(f"/api/v1/hooks/{plain['id']}").status_code == 404  # not made by a Zap
    assert tenant.api.delete(f"/api/v1/hooks/{hook['id']}").json() == {"id": hook["id"], "deleted": True}
    assert tenant.api.delete(f"/api/v1/hooks/{hook['id']}").status_code == 404
    assert list(WebhookEndpoint.objects.for_merchant(tenant.merchant).values_list("pk", flat=True)) == [plain["id"]]


def test_a_subscription_needs_a_known_event_and_the_api_key(tenant, client, httpserver):
    target = httpserver.url_for("/hooks/y/")
    bad = tenant.api.post("/api/v1/hooks", {"target_url": target, "event": "order.placed"}, format="json")
    assert bad.status_code == 400
    assert "event" in bad.json()["error"]["fields"]
    anonymous = client.post("/api/v1/hooks", {"target_url": target, "event": "reward.issued"}, "application/json")
    assert anonymous.status_code == 401


def test_the_sample_is_the_latest_real_event_else_an_example(tenant, program):
    example = tenant.api.get("/api/v1/hooks/samples?event=participant.created")
    assert example.status_code == 200
    [sample] = example.json()
    assert set(sample) >= {"id", "code", "link", "email"}

    tenant.api.post("/api/v1/webhook-endpoints", {"url": "https://hooks.example/in"}, format="json")
    participant, _code = joins(program, email="sample@example.com")
    [real] = tenant.api.get("/api/v1/hooks/samples?event=participant.created").json()
    assert (real["id"], real["email"]) == (participant.pk, "sample@example.com")
    assert tenant.api.get("/api/v1/hooks/samples?event=order.placed").status_code == 400
