"""Per-API-key rate limit: a fixed one-minute window counted in Redis (one round trip per request)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from referral_saas import ratelimit


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        api_key = getattr(request, "auth", None)
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if api_key is None or not limit:
            return True
        allowed, self._wait = ratelimit.hit(f"key:{api_key.pk}", limit=limit, window_seconds=60)
        return allowed

    def wait(self) -> float:
        return self._wait
