"""The outbound HTTP client every provider uses: httpx with timeouts, JSON in and out, and one error type that
says whether trying again may help.

Why not the platforms' SDKs: ShopifyAPI has no webhook verification and wraps the REST API Shopify is retiring in
favour of GraphQL; the `woocommerce` package was last released in 2021 (requests, no timeouts by default). A small
typed client over httpx does what we need (a base URL a connection can override, timeouts, a typed error) and is
tested against a real local HTTP server. Stripe's own `stripe` package is kept up and is used for Stripe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "ReferralSaaS-Integrations/1"


class PlatformError(Exception):
    """A call to a platform failed. `transient`: a network error, a timeout, 429 or 5xx (try again later);
    otherwise the platform refused (bad credentials, invalid data), and trying again changes nothing."""

    def __init__(
        self, message: str, *, status: int | None = None, transient: bool = False, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after  # seconds the platform asked us to wait (Retry-After), if it said


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


@dataclass
class PlatformClient:
    base_url: str
    headers: dict[str, str]
    auth: tuple[str, str] | None = None

    def request(self, method: str, path: str, *, json: object = None, params: dict | None = None) -> object:
        url = self.base_url.rstrip("/") + path
        try:
            with httpx.Client(
                timeout=TIMEOUT, headers={"User-Agent": USER_AGENT, **self.headers}, auth=self.auth
            ) as client:
                response = client.request(method, url, json=json, params=params)
        except httpx.HTTPError as exc:
            raise PlatformError(f"{method} {url}: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise PlatformError(
                f"{method} {url}: HTTP {response.status_code}",
                status=response.status_code,
                transient=True,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise PlatformError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:300]}", status=response.status_code
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise PlatformError(f"{method} {url}: the answer is not JSON", status=response.status_code) from exc

    def get(self, path: str, **params) -> object:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: object) -> object:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: object) -> object:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: object) -> object:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> object:
        return self.request("DELETE", path)
