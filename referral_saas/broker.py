"""The Celery broker's queues: Redis (the default) or RabbitMQ, chosen by the broker URL's scheme.

On RabbitMQ every task queue is a durable quorum queue behind a topic exchange of its own (Celery's native delayed
delivery needs topic exchanges for countdowns), with a delivery limit: a message that kept killing its worker goes
to the dead-letter queue instead of looping forever. A namespace (REDIS_NAMESPACE: tests, several deployments on one
RabbitMQ vhost) prefixes the names RabbitMQ sees; Celery's own names stay the short ones (`--queues rewards`,
routes), since each queue carries its short name as its alias.

Only kombu here: settings import this module.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kombu import Exchange, Queue

AMQP_SCHEMES = {"amqp", "amqps", "pyamqp"}
# Deliveries of one message before RabbitMQ dead-letters it (a worker killed while running it counts as one).
# RabbitMQ refuses to declare an existing queue with other arguments: a change here needs the queues deleted (or a
# policy on the server) first.
DELIVERY_LIMIT = 10
DEAD_LETTER = "dead-letter"
# Each publish waits for RabbitMQ's ack (publisher confirms): a message it did not take is an error for the caller,
# never a silent loss. A broker that is down is given up on quickly (the sweepers resend the work).
AMQP_TRANSPORT_OPTIONS = {"confirm_publish": True, "connect_timeout": 2}


def is_amqp(url: str) -> bool:
    return urlsplit(url).scheme in AMQP_SCHEMES


def broker_prefix(namespace: str) -> str:
    """What RabbitMQ names start with: `<namespace>:`, or nothing for a deployment without a namespace."""
    return f"{namespace}:" if namespace else ""


def dead_letter_exchange(prefix: str) -> Exchange:
    return Exchange(f"{prefix}{DEAD_LETTER}", type="fanout", durable=True)


def dead_letter_queue(prefix: str) -> Queue:
    """Where RabbitMQ moves a message past its delivery limit; no worker consumes it (an operator reads it)."""
    return Queue(
        f"{prefix}{DEAD_LETTER}",
        dead_letter_exchange(prefix),
        routing_key=DEAD_LETTER,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def task_queues(names: list[str], *, amqp: bool, prefix: str = "") -> list[Queue]:
    """Celery's task queues. Redis: the plain queues of old (its own key prefix isolates them). RabbitMQ: quorum
    queues named `<prefix><name>`, aliased `<name>`."""
    if not amqp:
        return [Queue(name, routing_key=name) for name in names]
    return [
        Queue(
            f"{prefix}{name}",
            Exchange(f"{prefix}{name}", type="topic", durable=True),
            routing_key=f"{prefix}{name}",
            alias=name,
            durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": f"{prefix}{DEAD_LETTER}",
                # Dead-lettered messages are confirmed into the dead-letter queue, never dropped on the way.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        for name in names
    ]


def delete_namespace(connection, *, names: list[str], prefix: str) -> None:
    """Remove the queues and exchanges of one namespace (a finished test run)."""
    assert prefix, "only a namespace's own queues are ever deleted"
    channel = connection.channel()
    try:
        for queue in [*task_queues(names, amqp=True, prefix=prefix), dead_letter_queue(prefix)]:
            channel.queue_delete(queue.name)
            channel.exchange_delete(queue.exchange.name)
    finally:
        channel.close()
