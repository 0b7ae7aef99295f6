"""The Celery app, configured from Django settings (CELERY_*). Queues, routes and the beat schedule live there."""

from __future__ import annotations

import gc
import logging
import os
import time

from celery import Celery, bootsteps, signals
from django.conf import settings

from referral_saas.broker import dead_letter_queue
from referral_saas.logging import request_id_var
from referral_saas.redis_client import get_redis, guarded

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_saas.settings")

app = Celery("referral_saas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class DeadLetterQueue(bootsteps.StartStopStep):
    """RabbitMQ: the worker declares the dead-letter exchange and queue (its task queues point there) when it
    connects. No worker consumes that queue: a message past its delivery limit waits there for an operator."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def include_if(self, c) -> bool:
        return settings.BROKER_IS_AMQP

    def start(self, c) -> None:
        with c.app.connection_for_write() as connection:
            dead_letter_queue(settings.BROKER_PREFIX).bind(connection.default_channel).declare()


app.steps["consumer"].add(DeadLetterQueue)


def beat_heartbeat_key() -> str:
    # Read when used: this module is imported with the package, before settings may be loaded.
    return f"{settings.REDIS_KEY_PREFIX}:beat:last_seen"


logger = logging.getLogger(__name__)


@app.task(name="referral_saas.ping")
def ping() -> str:
    """Round-trip check: the broker delivers, a worker runs it, the result backend answers."""
    return "pong"


@app.task(name="referral_saas.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Scheduled by beat; /readyz reports how long ago beat (and a worker) last ran it."""

    get_redis().set(beat_heartbeat_key(), str(time.time()), ex=3600)


@signals.worker_process_init.connect
def _settle_heap(**_kwargs) -> None:
    # What referral_saas.wsgi.settle_heap does for gunicorn's workers: the app's long-lived objects (imported
    # before the fork) are left out of every later garbage collection, which then takes milliseconds.
    gc.collect()
    gc.freeze()


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **_kwargs) -> None:
    # The request that enqueued the task is named on the worker's log lines too.
    if headers is not None and request_id_var.get() != "-":
        headers.setdefault("request_id", request_id_var.get())


@signals.task_prerun.connect
def _set_task_request_id(task_id=None, task=None, **_kwargs) -> None:
    origin = getattr(task.request, "request_id", None) if task is not None else None
    request_id_var.set(f"{origin}/{task_id}" if origin else f"task/{task_id}")


@signals.task_postrun.connect
def _clear_task_request_id(**_kwargs) -> None:
    request_id_var.set("-")


def enqueue_on_commit(name: str, **kwargs) -> None:
    """Send task `name` once the current transaction commits, without ever failing the caller.

    The rows the caller wrote say what work is unfinished, and the beat sweepers send it again; so when the broker
    is down the work is delayed, not lost, and the request that wrote the rows still succeeds.
    """
    from django.db import transaction

    def send() -> None:

        try:
            if settings.BROKER_IS_AMQP:  # Redis's breaker guards Redis only
                app.send_task(name, kwargs=kwargs, retry=False)
            else:
                guarded(app.send_task, name, kwargs=kwargs, retry=False)
        except Exception:
            logger.warning("could not enqueue %s %s; the sweeper will pick it up", name, kwargs, exc_info=True)

    transaction.on_commit(send)


def enqueue_now(name: str, **kwargs) -> None:
    """Send task `name` now (not on commit: a hint that more work is waiting), without ever failing the caller."""
    try:
        guarded(app.send_task, name, kwargs=kwargs, retry=False)
    except Exception:
        logger.warning("could not enqueue %s %s; the sweeper will pick it up", name, kwargs, exc_info=True)


# A coalesced message waits this long at most before a new one may be sent for the same key (a lost one, a busy
# queue); the task it starts must look at least this far past its own row for the work it stands for.
COALESCE_SECONDS = 30


def _coalesce_key(key: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:coalesce:{key}"


def enqueue_coalesced_on_commit(name: str, *, key: str, **kwargs) -> None:
    """enqueue_on_commit, unless a message for `key` was sent and no worker has taken it yet (a Redis key set with
    SET NX, released by the task with coalesce_release before it looks for work): that message's task will find
    the rows this transaction wrote, as it looks for them only after releasing the key, which is after this
    commit. Redis unreachable: the message is sent anyway (the broker is probably down too: the sweeper)."""
    from django.db import transaction

    def send() -> None:
        try:
            first = guarded(get_redis().set, _coalesce_key(key), "1", nx=True, ex=COALESCE_SECONDS)
        except Exception:
            first = True
        if not first:
            return
        try:
            guarded(app.send_task, name, kwargs=kwargs, retry=False)
        except Exception:
            logger.warning("could not enqueue %s %s; the sweeper will pick it up", name, kwargs, exc_info=True)

    transaction.on_commit(send)


def coalesce_release(key: str) -> None:
    """The task of a coalesced message starts: the next write sends a message again. Called before the task
    looks for its work, so that every write whose message was coalesced into this one is found."""
    try:
        guarded(get_redis().delete, _coalesce_key(key))
    except Exception:  # the key expires on its own
        logger.warning("could not release the coalesced message %s", key, exc_info=True)


def conversions_key(merchant_id: int) -> str:
    """The coalescing key of a merchant's `rewards.process_conversion` messages (sent by name from tracking)."""
    return f"rewards.process_conversion:{merchant_id}"
