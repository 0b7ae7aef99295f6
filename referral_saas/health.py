"""/healthz: the process answers. /readyz: PostgreSQL, Redis and the Celery broker (Redis or RabbitMQ) answer (503
when one does not)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from kombu.utils.url import maybe_sanitize_url

from referral_saas.celery import app, beat_heartbeat_key
from referral_saas.redis_client import get_redis

# Figures an app above the core adds to /readyz's Redis check: name -> function(redis client) -> value. Registered by
# the app's AppConfig.ready (the core imports no app); a figure informs, readiness does not depend on it.
_REDIS_FIGURES: dict = {}


def register_redis_figure(name: str, read) -> None:
    _REDIS_FIGURES[name] = read


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result = {"status": "ok"}
        if detail:
            result.update(detail)
    except Exception as exc:  # a failing dependency is the answer here, not an error
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> dict:
    client = get_redis()
    client.ping()
    last_beat = client.get(beat_heartbeat_key())
    return {
        "beat_last_seen_seconds": round(time.time() - float(last_beat), 1) if last_beat else None,
        **{name: read(client) for name, read in _REDIS_FIGURES.items()},
    }


def _rabbitmq() -> None:
    # A connection of its own, opened and closed: the answer is the broker's now, not a pooled socket's.
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)


def _broker(redis_check: dict) -> dict:
    """Which broker Celery uses and whether it answers; with Redis as the broker that is the Redis check's answer."""
    url = maybe_sanitize_url(app.conf.broker_url)
    if settings.BROKER_IS_AMQP:
        return {"transport": "amqp", "url": url, **_timed(_rabbitmq)}
    return {"transport": "redis", "url": url, "status": redis_check["status"], "same_as": "redis"}


@never_cache
def readyz(request):
    checks = {"postgres": _timed(_postgres), "redis": _timed(_redis)}
    checks["broker"] = _broker(checks["redis"])
    ready = all(check["status"] == "ok" for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
