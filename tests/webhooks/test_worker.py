"""End to end with a real Celery worker on the webhooks queue: the shop API creates a participant, the worker
delivers the signed participant.created event to a local server; a lost broker message is swept up."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from referral_saas.redis_client import get_redis
from referral_saas.webhooks.models import WebhookDelivery
from referral_saas.webhooks.tasks import sweep
from tests.processes import celery_worker
from tests.webhooks.conftest import delivery_of, emit, make_endpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _wait_until_succeeded(delivery_id: int, timeout: float = 30.0) -> WebhookDelivery:
    """The shop has the request; the worker records the outcome right after (before we stop it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.all_merchants.select_related("message").get(pk=delivery_id)
        if delivery.status == "succeeded":
            return delivery
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} is still {delivery.status}")


@pytest.fixture
def worker_env(monkeypatch, allow_private):
    # The worker process delivers to 127.0.0.1 too; and starts from an empty queue (nothing of earlier tests).
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")
    get_redis().delete("webhooks")


def test_a_real_worker_delivers_participant_created_to_the_shop(tenant, program, receiver, worker_env):
    _endpoint, secret = make_endpoint(tenant.merchant, receiver.url(), events=["participant.created"])
    with celery_worker(queues=["webhooks"]) as worker:
        response = tenant.api.post(
            "/api/v1/participants", {"program": "friends", "external_id": "c-42", "name": "Ana"}, format="json"
        )
        assert response.status_code == 201
        try:
            [request] = receiver.wait_for(1, timeout=60)
            delivery = _wait_until_succeeded(WebhookDelivery.objects.for_merchant(tenant.merchant).get().pk)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n" + "".join(worker.output_lines)) from None

    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "participant.created"
    assert payload["data"] == response.json()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert request.headers["webhook-id"] == delivery.message.msg_id


def test_a_delivery_whose_broker_message_was_lost_is_sent_by_the_sweeper(tenant, receiver, worker_env):
    endpoint, secret = make_endpoint(tenant.merchant, receiver.url())
    delivery = delivery_of(emit(tenant.merchant, "reward.issued", {"id": 9}), endpoint)
    get_redis().delete("webhooks")  # the broker lost the message (e.g. Redis restarted without its data)
    WebhookDelivery.objects.for_merchant(tenant.merchant).filter(pk=delivery.pk).update(
        enqueued_at=timezone.now() - timedelta(minutes=10)
    )

    with celery_worker(queues=["webhooks"]) as worker:
        sweep.delay()  # what beat sends every 10 seconds
        try:
            [request] = receiver.wait_for(1, timeout=60)
            _wait_until_succeeded(delivery.pk)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n" + "".join(worker.output_lines)) from None

    assert Webhook(secret).verify(request.body, request.headers)["data"] == {"id": 9}
