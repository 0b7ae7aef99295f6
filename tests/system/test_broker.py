"""The broker switch through the real processes: /readyz names the broker either way; on RabbitMQ a countdown (a
webhook's retry) comes back when due through the quorum queues, and a stack works under queue names of its own.
(The loop and the worker-SIGKILL redelivery run on both brokers in test_loop.py and test_faults.py.)"""

from __future__ import annotations

import pytest
import requests
from kombu.utils.url import maybe_sanitize_url

from tests.system.stack import wait_for

pytestmark = pytest.mark.slow


# On RabbitMQ only (a countdown on Redis is an ETA the worker holds, as it always was): the quorum queues' countdowns
# travel through Celery's native delayed delivery (the `celery_delayed_*` exchanges and queues the worker declares).
@pytest.mark.parametrize("stack", ["procfile+rabbitmq"], indirect=True)
def test_a_refused_webhook_is_retried_by_a_celery_countdown(stack, webhook_receiver):
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    endpoint = api.post(
        "/api/v1/webhook-endpoints", json={"url": webhook_receiver.url, "events": ["participant.created"]}
    )
    assert endpoint.status_code == 201, endpoint.text
    webhook_receiver.fail_next(1)

    joined = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "w-1", "email": "w@example.pl"}
    )
    assert joined.status_code == 201, joined.text

    # The shop answers 503 once; the retry rides on a Celery countdown of about 5 s (the sweeper would resend it
    # only after minutes), so the second attempt arrives soon, and not before the countdown.
    wait_for(lambda: len(webhook_receiver.deliveries) >= 2, timeout=60, what="the webhook's retry")
    first, second = (headers["webhook-id"] for headers, _body in webhook_receiver.deliveries[:2])
    assert first == second  # the same message, attempted again
    assert webhook_receiver.arrived_at[1] - webhook_receiver.arrived_at[0] >= 4
    assert len(webhook_receiver.deliveries) == 2


@pytest.mark.parametrize("stack", ["procfile", "procfile+rabbitmq"], indirect=True)
def test_readyz_names_the_broker_and_a_rabbitmq_stack_consumes_queues_of_its_own(stack):
    body = requests.get(f"{stack.base_url}/readyz", timeout=30).json()
    assert body["status"] == "ok"
    broker = body["checks"]["broker"]
    assert broker["status"] == "ok"
    if not stack.rabbitmq:
        assert broker["transport"] == "redis"
        return
    assert broker["transport"] == "amqp"
    assert broker["url"] == maybe_sanitize_url(stack.env["CELERY_BROKER_URL"])  # never the password
    # `--queues rewards` in the Procfile is this stack's `<namespace>:rewards` on the shared server: its one worker
    # consumes it, and no other stack's does.
    assert stack.broker_queue("rewards") == (0, 1)
