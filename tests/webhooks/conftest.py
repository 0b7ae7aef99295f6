"""A real HTTP server on 127.0.0.1 that receives webhooks (the only thing that leaves the code under test)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from referral_saas.webhooks import services
from referral_saas.webhooks.models import WebhookDelivery
from tests.threads import serve_in_thread, stop_serving


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0
    drip: float = 0.0  # send the headers one at a time, this many seconds apart (each read is quick, the whole slow)
    drip_headers: int = 15


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers each request with the next queued Reply (then 200), and remembers every request."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.received.append(
                        Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = receiver.replies.popleft() if receiver.replies else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    if reply.drip:
                        self.wfile.write(f"HTTP/1.1 {reply.status} OK\r\n".encode())
                        for n in range(reply.drip_headers):
                            self.wfile.write(f"X-Drip-{n}: 1\r\n".encode())
                            self.wfile.flush()
                            time.sleep(reply.drip)
                        self.wfile.write(b"Content-Length: 0\r\n\r\n")
                        return
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_POST = do_GET = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = serve_in_thread(self.server)

    def url(self, path: str = "/hooks/referrals") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook requests within {timeout}s, got {len(self.received)}")

    def close(self) -> None:
        stop_serving(self.server, self._thread)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def allow_private(settings):
    """The receiver listens on 127.0.0.1: allow private addresses (as development does)."""
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    return settings


@pytest.fixture
def refuse_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    return settings


def make_endpoint(merchant, url: str, **kwargs):
    """(endpoint, secret) through the real service."""
    return services.endpoint_create(merchant=merchant, livemode=kwargs.pop("livemode", True), url=url, **kwargs)


def emit(merchant, event_type: str = "reward.issued", data: dict | None = None, livemode: bool = True):
    return services.webhook_emit(
        merchant=merchant, livemode=livemode, event_type=event_type, data=data or {"id": 7, "amount": "10.00"}
    )


def delivery_of(message, endpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.for_merchant(message.merchant_id).get(message=message, endpoint=endpoint)


def make_due(delivery: WebhookDelivery) -> None:
    """Time passes: the next attempt of `delivery` is due now."""
    WebhookDelivery.objects.for_merchant(delivery.merchant_id).filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now()
    )


def attempt(delivery: WebhookDelivery) -> str | None:
    return services.delivery_attempt(merchant_id=delivery.merchant_id, delivery_id=delivery.pk)


def fresh(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.objects.for_merchant(delivery.merchant_id).select_related("endpoint").get(pk=delivery.pk)
