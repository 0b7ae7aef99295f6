"""Two workers on one delivery at the same moment, from real threads on real PostgreSQL connections: one request."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from referral_saas.webhooks import services
from referral_saas.webhooks.models import WebhookAttempt
from tests.threads import join_all, run_together, start
from tests.webhooks.conftest import Reply, delivery_of, emit, fresh, make_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("workers", [2, 8])
def test_concurrent_attempts_of_one_delivery_send_it_once(tenant, receiver, allow_private, workers):
    endpoint, _secret = make_endpoint(tenant.merchant, receiver.url())
    delivery = delivery_of(emit(tenant.merchant), endpoint)
    receiver.reply(Reply(200, delay=0.5))  # a slow answer keeps the first attempt in flight
    results, errors = run_together(
        workers, lambda _i: services.delivery_attempt(merchant_id=tenant.merchant.pk, delivery_id=delivery.pk)
    )

    assert errors == []
    assert sorted(results, key=str) == sorted(["succeeded"] + [None] * (workers - 1), key=str)
    assert len(receiver.received) == 1
    assert WebhookAttempt.objects.for_merchant(tenant.merchant).filter(delivery=delivery).count() == 1
    assert fresh(delivery).attempts == 1


def test_an_endpoint_deleted_while_an_event_is_emitted_never_fails_the_emitting_transaction(tenant):
    """The event's deliveries point at the endpoint; PostgreSQL checks that at commit. A delete committed in
    between used to fail the caller's commit (a participant's POST, a rewards task): now the delete waits."""
    import time

    from django.db import transaction

    from referral_saas.webhooks.models import WebhookEndpoint, WebhookMessage

    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.example/in")
    emitted, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    deleted = threading.Event()

    def emitting() -> None:
        try:
            with transaction.atomic():
                emit(tenant.merchant)
                emitted.set()
                go.wait(10)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def deleting() -> None:
        try:
            emitted.wait(10)
            services.endpoint_delete(endpoint=endpoint)
            deleted.set()
        finally:
            connection.close()

    threads = start(emitting, deleting)
    emitted.wait(10)
    # Let the delete reach PostgreSQL: it either waits for the emitting transaction's lock, or (the old bug) is done.
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline and not deleted.is_set():
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.02)
    go.set()
    join_all(threads)

    assert errors == []
    assert WebhookMessage.objects.for_merchant(tenant.merchant).count() == 1  # the caller's writes are kept
    assert not WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=endpoint.pk).exists()
