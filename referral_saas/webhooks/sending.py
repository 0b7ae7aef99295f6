"""The HTTP side of a delivery: the Standard Webhooks signature, the SSRF guard and one POST with its outcome.

Nothing here touches the database; `services.delivery_attempt` decides what an outcome means.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from standardwebhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TIMEOUT_SECONDS = 10  # the whole request; a shop that needs longer should answer first and work after
EXCERPT_BYTES = 1024
USER_AGENT = "ReferralSaaS-Webhooks/1.0 (+https://www.standardwebhooks.com/)"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")  # special purpose (DS-Lite, NAT64 discovery, ...)


# --- SSRF guard -------------------------------------------------------------------------------------------------


class RefusedAddress(Exception):
    """The URL's host is (or resolves to) an address webhooks must not reach."""


def private_urls_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_URLS)


def address_kind(address: str) -> str | None:
    """Why an IP address is off limits ("loopback", "private", ...), or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address inside are judged by it.
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip.sixtofour:
            ip = ip.sixtofour
        elif ip.teredo:
            ip = ip.teredo[1]
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # fec0::/10, deprecated, often still routed
        return "site-local"
    if ip in _IETF_PROTOCOL:
        return "special-purpose"
    for attribute, kind in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attribute):
            return kind
    return None if ip.is_global else "non-public"


def _refusal(host: str, address: str) -> str | None:
    kind = address_kind(address)
    if kind is None:
        return None
    shown = host if host == address else f"{host} ({address})"
    return f"{shown} is a {kind} address: webhooks are only sent to public internet addresses."


def url_refusal(url: str) -> str | None:
    """Why this URL may not receive webhooks, or None. A host that does not resolve (yet) is not refused here:
    every connection is checked again when it is made."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Use an http:// or https:// URL."
    if not host:
        return "The URL has no host."
    if port == 0:
        return "Port 0 cannot receive connections: use the URL's real port (or none for 80/443)."
    if private_urls_allowed():
        return None
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return None
    for info in infos:
        refusal = _refusal(host, info[4][0])
        if refusal:
            return refusal
    return None


class _Deadline:
    """One clock for the whole request. A timeout on each read is not enough: an endpoint that sends a byte every
    few seconds would hold the worker (and every other shop's webhooks behind it) for minutes. When the time is up,
    the connection's socket is shut down, which ends whatever read is waiting."""

    _current = threading.local()

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _Deadline._current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _Deadline._current.deadline = None

    @classmethod
    def watch(cls, sock: socket.socket) -> None:
        deadline = getattr(cls._current, "deadline", None)
        if deadline is None:
            return
        with deadline._lock:
            deadline._sockets.append(sock)
            expired = deadline.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class _GuardedConnectionMixin:
    """Checks the address actually connected to, so a DNS answer that changes after the check (rebinding)
    cannot smuggle a private address in; and puts the socket under the request's deadline."""

    def _new_conn(self):
        sock = super()._new_conn()
        if not private_urls_allowed():
            refusal = _refusal(self.host, sock.getpeername()[0])
            if refusal:
                sock.close()
                raise RefusedAddress(refusal)
        _Deadline.watch(sock)
        return sock


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the guard must see the real destination
    session.mount("http://", _GuardedAdapter())
    session.mount("https://", _GuardedAdapter())
    return session


# --- signing ----------------------------------------------------------------------------------------------------


def body_for(*, event_type: str, created_at: datetime, data: dict) -> bytes:
    """The request body: {"type", "timestamp", "data"}; the same bytes on every attempt of a message."""
    timestamp = created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {"type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_headers(*, msg_id: str, body: bytes, secrets: list[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers. With two secrets (a rotation in progress) the signature header carries both."""
    text = body.decode("utf-8")
    signatures = " ".join(Webhook(secret).sign(msg_id, at, text) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


# --- one POST ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt: str = ""
    error: str = ""
    retry_after_seconds: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None if absent or invalid."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def post(url: str, *, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST once: no redirects followed, no proxies, 10 s for the whole request (the status line and headers must
    arrive by then; a body still coming is cut off), the first KB of the answer kept. Never raises."""
    refusal = url_refusal(url)
    if refusal:
        return Outcome(error=refusal)
    started = time.monotonic()
    too_slow = Outcome(error=f"No answer within {TIMEOUT_SECONDS} seconds.")
    try:
        with _Deadline(TIMEOUT_SECONDS) as deadline, _session() as session:
            try:
                response = session.post(
                    url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True
                )
            except (requests.RequestException, ValueError, UnicodeError, OSError):
                if deadline.expired:
                    return too_slow
                raise
            if deadline.expired:  # the headers were cut off by the deadline (http.client takes EOF as their end)
                response.close()
                return too_slow
            latency_ms = int((time.monotonic() - started) * 1000)
            try:
                raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
            except Exception:  # a broken (or cut off) body does not change the status the shop answered
                raw = b""
            finally:
                response.close()
    except RefusedAddress as exc:
        return Outcome(error=str(exc))
    except requests.Timeout:
        return too_slow
    except requests.ConnectionError as exc:
        return Outcome(error=f"Could not connect: {_short(exc)}")
    except (requests.RequestException, ValueError, UnicodeError) as exc:
        return Outcome(error=f"Request failed: {_short(exc)}")

    status = response.status_code
    error = ""
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        error = f"Redirect ({status}) to {location or 'nowhere'} not followed: point the endpoint at the final URL."
    elif not 200 <= status < 300:
        error = f"HTTP {status} {response.reason or ''}".strip()
    return Outcome(
        status_code=status,
        latency_ms=latency_ms,
        excerpt=raw[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
        error=error[:500],
        retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
    )


def _short(exc: Exception) -> str:
    return str(exc)[:300]
