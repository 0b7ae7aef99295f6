"""Fixtures shared by the rewards tests that run a real Celery worker."""

from __future__ import annotations

import pytest


def broker_keys(*names: str) -> list:
    """The run's broker keys for these names (queues, kombu's unacked hash): Celery's prefix in the namespace."""
    from django.conf import settings

    from referral_saas.redis_client import get_redis

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    assert prefix.startswith(settings.REDIS_NAMESPACE), "tests use the broker keys of their own run only"
    client = get_redis()
    return [key for name in names for key in client.scan_iter(match=f"{prefix}{name}*")]


def broker_backlog(queue: str) -> dict:
    """Messages waiting in `queue` (every priority) and messages a worker took but never acknowledged."""
    from django.conf import settings

    from referral_saas.redis_client import get_redis

    client = get_redis()
    waiting = sum(client.llen(key) for key in broker_keys(queue) if client.type(key) in (b"list", "list"))
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return {"waiting": waiting, "unacked": client.hlen(f"{prefix}unacked")}


@pytest.fixture
def empty_rewards_queue():
    """Messages other tests left in the test broker (queued, or taken by a worker killed since) must not reach
    this test's worker; and what this test's killed worker held is not left for the next test (nor for the
    suite's end, which requires every message acknowledged, whatever order the tests ran in)."""
    from referral_saas.redis_client import get_redis

    def empty() -> None:
        keys = broker_keys("rewards", "unacked")
        if keys:
            get_redis().delete(*keys)

    empty()
    assert broker_backlog("rewards") == {"waiting": 0, "unacked": 0}
    yield
    empty()
