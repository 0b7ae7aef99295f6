"""Celery is configured from settings and a real worker (not eager) answers."""

from __future__ import annotations

import pytest
from django.conf import settings

from referral_saas.celery import app, ping
from tests.processes import celery_worker


def test_celery_is_configured_for_at_least_once_delivery():
    conf = app.conf
    assert conf.broker_url == settings.CELERY_BROKER_URL  # REDIS_URL unless the environment names RabbitMQ
    assert conf.result_backend == settings.REDIS_URL
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_always_eager is False
    assert conf.task_time_limit
    assert conf.task_soft_time_limit
    assert {q.alias or q.name for q in conf.task_queues} == {  # RabbitMQ's names carry the namespace
        "default",
        "clicks",
        "rewards",
        "fraud",
        "webhooks",
        "analytics",
        "integrations",
    }


def test_beat_schedule_names_only_registered_tasks():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.mark.slow
def test_ping_goes_through_a_real_worker():
    with celery_worker(queues=["default"]):
        assert ping.delay().get(timeout=60) == "pong"
