"""The merchant admin for webhooks as staff use it: add an endpoint (secret once), events, enable/disable,
rotate, deliveries with their attempts, resend."""

from __future__ import annotations

import re

import pytest
from standardwebhooks import Webhook

from referral_saas.tenancy.models import Membership
from referral_saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import staff_client
from tests.factories import MembershipFactory
from tests.webhooks.conftest import Reply, attempt, delivery_of, emit, fresh, make_endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/webhookendpoint/"
DELIVERIES = "/admin/webhooks/webhookdelivery/"


def _secret_in(html: str) -> str:
    match = re.search(r"data-testid='webhook-secret'>(whsec_[A-Za-z0-9+/=]+)<", html)
    assert match, "the secret is shown"
    return match.group(1)


def test_adding_an_endpoint_shows_its_secret_once(tenant, allow_private, receiver):
    form = tenant.admin.get(ENDPOINTS + "add/").content.decode()
    for event_type in ("participant.created", "reward.clawed_back"):  # events are checkboxes
        assert re.search(rf'type="checkbox" name="events" value="{re.escape(event_type)}"', form)

    response = tenant.admin.post(
        ENDPOINTS + "add/",
        {
            "url": receiver.url(),
            "description": "ERP",
            "events": ["reward.issued", "participant.created"],
            "livemode": "on",
            "enabled": "on",
        },
        follow=True,
    )

    assert response.status_code == 200
    secret = _secret_in(response.content.decode())
    endpoint = WebhookEndpoint.objects.for_merchant(tenant.merchant).get()
    assert (endpoint.url, endpoint.description, endpoint.events) == (
        receiver.url(),
        "ERP",
        ["participant.created", "reward.issued"],
    )
    assert endpoint.secret == secret
    change = tenant.admin.get(f"{ENDPOINTS}{endpoint.pk}/change/").content.decode()
    assert secret not in change
    assert endpoint.secret_hint in change
    assert secret not in tenant.admin.get(ENDPOINTS).content.decode()


def test_a_private_url_is_refused_in_the_admin_form(tenant, refuse_private):
    response = tenant.admin.post(ENDPOINTS + "add/", {"url": "http://169.254.169.254/latest", "livemode": "on"})
    assert response.status_code == 200  # the form again, with the reason
    assert "link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.for_merchant(tenant.merchant).exists()


def test_editing_events_and_turning_an_endpoint_off_and_on(tenant):
    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/a")
    tenant.admin.post(
        f"{ENDPOINTS}{endpoint.pk}/change/",
        {"url": "https://hooks.shop.example/b", "description": "", "events": ["reward.voided"]},
    )
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.enabled, endpoint.disabled_reason) == (
        "https://hooks.shop.example/b",
        ["reward.voided"],
        False,
        "manual",
    )
    tenant.admin.post(ENDPOINTS, {"action": "enable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (True, "")
    tenant.admin.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "manual")
    assert emit(tenant.merchant, "reward.voided") is None


def test_rotating_the_secret_shows_the_new_one(tenant, allow_private, receiver):
    endpoint, old = make_endpoint(tenant.merchant, receiver.url())
    response = tenant.admin.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True)
    new = _secret_in(response.content.decode())
    assert new != old
    attempt(delivery_of(emit(tenant.merchant), endpoint))
    [request] = receiver.received
    Webhook(new).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)


def test_a_delivery_page_shows_every_attempt(tenant, allow_private, receiver):
    endpoint, _secret = make_endpoint(tenant.merchant, receiver.url())
    delivery = delivery_of(emit(tenant.merchant, "reward.issued", {"id": 77}), endpoint)
    receiver.reply(Reply(503, body=b"maintenance window"))
    attempt(delivery)

    listing = tenant.admin.get(DELIVERIES).content.decode()
    assert delivery.message.msg_id in listing
    page = tenant.admin.get(f"{DELIVERIES}{delivery.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "maintenance window" in html
    assert "503" in html
    assert delivery.message.msg_id in html
    assert "&quot;id&quot;: 77" in html or '"id": 77' in html
    assert 'name="_save"' not in html  # read-only


def test_resend_from_the_admin_sends_the_same_webhook_id_again(tenant, allow_private, receiver):
    endpoint, secret = make_endpoint(tenant.merchant, receiver.url())
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    assert attempt(delivery) == "succeeded"

    response = tenant.admin.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]}, follow=True)

    assert "will be sent again" in response.content.decode()
    assert fresh(delivery).status == "pending"
    assert attempt(delivery) == "succeeded"
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message.msg_id
    Webhook(secret).verify(second.body, second.headers)
    assert WebhookAttempt.objects.for_merchant(tenant.merchant).filter(delivery=delivery).count() == 2


def test_resend_to_a_disabled_endpoint_says_why_not(tenant):
    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/a")
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    tenant.admin.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk]})
    response = tenant.admin.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]}, follow=True)
    assert "enable it first" in response.content.decode()
    assert fresh(delivery).status == "failed"


def test_analysts_can_look_but_not_resend_or_change(tenant):
    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/a")
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    WebhookDelivery.objects.for_merchant(tenant.merchant).filter(pk=delivery.pk).update(
        status="failed", next_attempt_at=None
    )
    analyst = staff_client(
        MembershipFactory(merchant=tenant.merchant, role=Membership.Role.ANALYST).user, tenant.merchant
    )

    assert analyst.get(DELIVERIES).status_code == 200
    assert analyst.get(f"{DELIVERIES}{delivery.pk}/change/").status_code == 200
    assert analyst.get(ENDPOINTS + "add/").status_code == 403
    analyst.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]})
    analyst.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk]})
    assert fresh(delivery).status == "failed"
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=endpoint.pk).enabled


def test_another_merchant_cannot_resend_or_disable_mine(tenant, other_tenant):
    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/a")
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    WebhookDelivery.objects.for_merchant(tenant.merchant).filter(pk=delivery.pk).update(
        status="failed", next_attempt_at=None
    )
    other_tenant.admin.post(DELIVERIES, {"action": "resend", "_selected_action": [delivery.pk]})
    other_tenant.admin.post(ENDPOINTS, {"action": "disable", "_selected_action": [endpoint.pk]})
    other_tenant.admin.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    assert fresh(delivery).status == "failed"
    stored = WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=endpoint.pk)
    assert (stored.enabled, stored.secret) == (True, endpoint.secret)


def test_adding_an_endpoint_past_the_limit_shows_the_form_again_with_the_reason(tenant):
    from django.contrib.admin.models import LogEntry

    from referral_saas.webhooks.services.endpoints import MAX_ENDPOINTS_PER_MODE

    for n in range(MAX_ENDPOINTS_PER_MODE):
        make_endpoint(tenant.merchant, f"https://hooks.shop.example/{n}")
    response = tenant.admin.post(
        ENDPOINTS + "add/",
        {"url": "https://hooks.shop.example/one-more", "description": "ERP", "livemode": "on", "enabled": "on"},
    )

    assert response.status_code == 200  # the form again, as typed, with the reason
    html = response.content.decode()
    assert "You have 20 webhook endpoints in this mode already; delete one first." in html
    assert 'value="https://hooks.shop.example/one-more"' in html
    assert "webhook-secret" not in html
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).count() == MAX_ENDPOINTS_PER_MODE
    assert not LogEntry.objects.filter(object_repr__contains="one-more").exists()
    # a test-mode endpoint has its own limit
    test_mode = {"url": "https://hooks.shop.example/test", "enabled": "on"}
    assert tenant.admin.post(ENDPOINTS + "add/", test_mode).status_code == 302
