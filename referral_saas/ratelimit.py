"""Fixed-window counters in Redis: one pipelined round trip; fail open when Redis is down."""

from __future__ import annotations

import time

from django.conf import settings
from redis.exceptions import RedisError

from referral_saas.redis_client import get_redis, guarded


def hit(key: str, *, limit: int, window_seconds: int) -> tuple[bool, float]:
    """Count one event under `key`; return (allowed, seconds until the window resets)."""
    now = time.time()
    window = int(now // window_seconds)
    # Under the cache's key prefix, so a test run's counters are its own (and cleared with its cache).
    redis_key = f"{settings.REDIS_KEY_PREFIX}:rl:{key}:{window}"
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, window_seconds * 2)
        count, _ok = guarded(pipe.execute)
    except RedisError:
        return True, 0.0
    return count <= limit, window_seconds - (now % window_seconds)
