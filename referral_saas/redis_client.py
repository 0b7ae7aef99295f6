"""One Redis connection pool per process, from REDIS_URL (the cache and the click buffer use it), and a breaker.

Redis is a cache, a buffer and a broker here, never the record: when it fails (down, or hanging: it accepts the
connection and never answers), requests carry on from PostgreSQL. After one failure the process stops asking Redis
for a few seconds, so that a hanging Redis costs one socket timeout per process, not one per call.
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Seconds Redis is left alone after a failure, in this process.
BREAKER_SECONDS = 5.0
_unavailable_until = 0.0


@functools.cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def redis_unavailable() -> bool:
    """True for a few seconds after Redis failed in this process: callers skip it instead of waiting again."""
    return time.monotonic() < _unavailable_until


def note_redis_failure(exc: BaseException) -> None:
    global _unavailable_until
    if not redis_unavailable():
        logger.warning("Redis unavailable (%s: %s); skipping it for %ss", type(exc).__name__, exc, BREAKER_SECONDS)
    _unavailable_until = time.monotonic() + BREAKER_SECONDS


def redis_reset_breaker() -> None:
    """Forget a noted failure (tests)."""
    global _unavailable_until
    _unavailable_until = 0.0


class RedisSkipped(redis.exceptions.ConnectionError):
    """Raised instead of calling Redis while the breaker is open."""


def guarded(call, *args, **kwargs):
    """Run a Redis call unless the breaker is open; a RedisError opens it and is raised to the caller."""
    if redis_unavailable():
        raise RedisSkipped("Redis failed moments ago; not asking again yet")
    try:
        return call(*args, **kwargs)
    except redis.exceptions.RedisError as exc:
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            note_redis_failure(exc)
        raise
