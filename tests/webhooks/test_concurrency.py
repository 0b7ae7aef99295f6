"""Two workers on one delivery at the same moment, from real threads on real PostgreSQL connections: one request."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from referral_saas.webhooks import services
from referral_saas.webhooks.models import WebhookAttempt
from tests.webhooks.conftest import Reply, delivery_of, emit, fresh, make_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("workers", [2, 8])
def test_concurrent_attempts_of_one_delivery_send_it_once(tenant, receiver, allow_private, workers):
    endpoint, _secret = make_endpoint(tenant.merchant, receiver.url())
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    receiver.reply(Reply(200, delay=0.5))  # a slow answer keeps the first attempt in flight
    barrier = threading.Barrier(workers)
    results: list[str | None] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            barrier.wait()
            status = services.delivery_attempt(merchant_id=tenant.merchant.pk, delivery_id=delivery.pk)
            with lock:
                results.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == sorted(["succeeded"] + [None] * (workers - 1), key=str)
    assert len(receiver.received) == 1
    assert WebhookAttempt.objects.for_merchant(tenant.merchant).filter(delivery=delivery).count() == 1
    assert fresh(delivery).attempts == 1
