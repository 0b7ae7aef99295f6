"""The cache backend: Django's Redis cache that fails open.

A cache miss costs a PostgreSQL query; a cache error must cost nothing more. When Redis is down or hangs, reads
miss, writes and invalidations are skipped (logged; cached values expire within their timeout), `add` answers
False (so a one-time token is refused rather than accepted twice), and the breaker in redis_client keeps every
later call in this process from waiting on the same dead Redis for a few seconds. `incr`/`decr` still raise: a
counter that silently did nothing would be wrong.
"""

from __future__ import annotations

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from referral_saas.redis_client import note_redis_failure, redis_unavailable

_FAILURES = (RedisConnectionError, RedisTimeoutError)


class _ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client builds a new `redis.Redis` (and its ~80 response callbacks) on every cache call; one per
    connection pool does: a `redis.Redis` holds no connection of its own (it borrows one from the pool per command)
    and is safe to share between threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClientRedisCacheClient

    def _or(self, default, method, *args, **kwargs):
        if redis_unavailable():
            return default
        try:
            return method(*args, **kwargs)
        except _FAILURES as exc:
            note_redis_failure(exc)
            return default

    def get(self, key, default=None, version=None):
        return self._or(default, super().get, key, default, version)

    def get_many(self, keys, version=None):
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._or(False, super().has_key, key, version)

    # timeout=None means "never expires" in Django; DEFAULT_TIMEOUT is the "not given" sentinel.
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(None, super().set, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(list(data), super().set_many, data, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(False, super().add, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._or(False, super().delete, key, version)

    def delete_many(self, keys, version=None):
        return self._or(None, super().delete_many, keys, version)
