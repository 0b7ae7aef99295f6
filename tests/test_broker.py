"""The broker switch: Redis by default; RabbitMQ with quorum queues (delivery limit, dead letters), topic exchanges
for countdowns, publisher confirms and names under the namespace. The RabbitMQ checks are skipped when none listens
(TEST_RABBITMQ_URL, else 127.0.0.1:5672 as guest)."""

from __future__ import annotations

import os
import secrets

import amqp
import pytest
from celery import Celery
from django.conf import settings
from kombu import Connection, Exchange, Producer

from referral_saas.broker import (
    AMQP_TRANSPORT_OPTIONS,
    DELIVERY_LIMIT,
    dead_letter_queue,
    delete_namespace,
    is_amqp,
    task_queues,
)
from tests.system.stack import rabbitmq_url, wait_for

NAMES = settings.CELERY_QUEUE_NAMES


def test_redis_is_the_default_broker():
    if os.environ.get("CELERY_BROKER_URL") or os.environ.get("BROKER_URL"):
        pytest.skip("this run chose its broker")
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert settings.BROKER_IS_AMQP is False
    assert [q.name for q in settings.CELERY_TASK_QUEUES] == NAMES  # the names Redis always had


@pytest.mark.parametrize(
    ("url", "amqp"),
    [("amqp://guest:guest@rabbit:5672//", True), ("amqps://u:p@rabbit/vh", True), ("pyamqp://rabbit", True),
     ("redis://127.0.0.1:6379/0", False), ("rediss://cache:6380/1", False)],
)  # fmt: skip
def test_the_scheme_picks_the_transport(url, amqp):
    assert is_amqp(url) is amqp


def test_rabbitmq_queues_are_durable_quorum_queues_with_a_delivery_limit_behind_topic_exchanges():
    queues = task_queues(NAMES, amqp=True, prefix="ns1:")
    for name, queue in zip(NAMES, queues, strict=True):
        assert (queue.name, queue.alias, queue.routing_key) == (f"ns1:{name}", name, f"ns1:{name}")
        assert queue.durable
        assert not queue.auto_delete
        assert queue.exchange.type == "topic"  # native delayed delivery (countdowns) needs topic exchanges
        assert queue.queue_arguments["x-queue-type"] == "quorum"
        assert queue.queue_arguments["x-delivery-limit"] == DELIVERY_LIMIT
        assert queue.queue_arguments["x-dead-letter-exchange"] == "ns1:dead-letter"
    assert dead_letter_queue("ns1:").name == "ns1:dead-letter"


def test_workers_and_routes_use_the_short_names_and_reach_the_namespaced_queues():
    app = Celery("broker-test", set_as_current=False)
    app.conf.update(
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
        task_queues=task_queues(NAMES, amqp=True, prefix="ns1:"),
        task_default_queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        task_routes=settings.CELERY_TASK_ROUTES,
    )
    assert app.amqp.router.route({}, "rewards.process_conversion")["queue"].name == "ns1:rewards"
    assert app.amqp.router.route({}, "referral_saas.ping")["queue"].name == "ns1:default"
    app.amqp.queues.select(["rewards", "clicks"])  # what `celery worker --queues rewards,clicks` does
    assert set(app.amqp.queues.consume_from) == {"ns1:rewards", "ns1:clicks"}


@pytest.fixture
def rabbitmq():
    """A connection to the test RabbitMQ and a namespace of the test's own, deleted afterwards."""
    url = rabbitmq_url()
    if url is None:
        pytest.skip("no RabbitMQ listens on 127.0.0.1:5672 (or TEST_RABBITMQ_URL)")
    prefix = f"{settings.REDIS_NAMESPACE}:unit-{secrets.token_hex(3)}:"
    with Connection(url, transport_options=AMQP_TRANSPORT_OPTIONS) as connection:
        yield connection, prefix
        delete_namespace(connection, names=NAMES, prefix=prefix)


def test_a_message_that_keeps_coming_back_is_dead_lettered_at_the_delivery_limit(rabbitmq):
    connection, prefix = rabbitmq
    channel = connection.channel()
    queue = task_queues(["rewards"], amqp=True, prefix=prefix)[0].bind(channel)
    dead = dead_letter_queue(prefix).bind(channel)
    dead.declare()
    queue.declare()
    Producer(channel).publish({"task": "poison"}, exchange=queue.exchange, routing_key=queue.routing_key)

    # Each worker that takes it dies (Celery then rejects it back to the queue: task_reject_on_worker_lost).
    deliveries = 0
    while (message := queue.get(no_ack=False)) is not None:
        deliveries += 1
        message.reject(requeue=True)
        assert deliveries <= DELIVERY_LIMIT + 1, "the message keeps coming back"
    assert deliveries == DELIVERY_LIMIT + 1
    letter = wait_for(lambda: dead.get(no_ack=True), timeout=10, interval=0.05, what="the dead letter")
    assert letter.payload == {"task": "poison"}
    channel.close()


def test_a_publish_the_broker_refuses_is_an_error_not_a_silent_loss(rabbitmq):
    connection, prefix = rabbitmq
    channel = connection.channel()
    nowhere = Exchange(f"{prefix}no-such-exchange", type="topic")
    # Without confirms this publish returns quietly and the message is gone; with them the broker's 404 is raised.
    with pytest.raises(amqp.exceptions.NotFound):
        Producer(channel).publish({"task": "x"}, exchange=nowhere, routing_key="x", declare=[])
