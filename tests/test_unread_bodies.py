"""A request body the application answered without reading (a 413, a CSRF 403, a 404) is read to its end and thrown
away before the answer goes out, so that a kept-alive connection can carry the next request; a body too large for
that, or a client that stalls, gets an answer that says `Connection: close`.

gunicorn's threaded workers (the Procfile's) answered such requests "keep-alive", drained at most 64 KB and closed:
the client's next request on the connection met a closed socket. These call `referral_saas.wsgi.application` with
a hand-built environ; tests/system/test_hostile.py does it through the real servers.
"""

from __future__ import annotations

import pytest

from referral_saas.wsgi import DRAIN_MAX_BYTES
from tests.wsgi_calls import BodyStream, call_wsgi, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)  # the real handler opens and closes connections per request


class _ServerResponse:
    """Stands in for gunicorn's response object, which the application reaches through wsgi.early_hints."""

    def __init__(self):
        self.closes = False

    def force_close(self):
        self.closes = True


def _early_hints(resp, req=None, sock=None):
    def send_early_hints(headers):  # gunicorn's callback: a closure over its request, socket and response
        return req, sock, resp

    return send_early_hints


def _call(path: str, stream, *, length: int | None, method: str = "POST", content_type: str = "text/plain"):
    """What the server has been told when it writes the status line: the status, how much of the body was read by
    then, and whether it was asked to close the connection."""
    server_response = _ServerResponse()
    environ = wsgi_environ(
        path, stream, length=length, method=method, content_type=content_type,
        **{"wsgi.early_hints": _early_hints(server_response)},
    )  # fmt: skip
    seen = {}

    def on_answer(status: int) -> None:
        seen["status"], seen["read_when_answered"], seen["close"] = status, stream.read_bytes, server_response.closes

    call_wsgi(environ, on_answer=on_answer)
    return seen


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/healthz", 200_000, 403),  # no CSRF cookie: refused before the body is read
        ("/r/NO-SUCH-CODE", 200_000, 403),
        ("/accounts/login/", 3_000_000, 403),
        ("/api/v1/participants", 70_000, 413),  # over the API's 64 KB
    ],
)
def test_an_unread_body_is_read_to_its_end_before_the_answer_and_the_connection_stays_open(db, path, size, status):
    body = b"x" * size
    stream = BodyStream(body)
    seen = _call(path, stream, length=size)
    assert seen["status"] == status
    assert seen["read_when_answered"] == size
    assert seen["close"] is False


def test_a_chunked_body_over_the_limit_is_drained_too(db):
    body = b"x" * 200_000
    seen = _call("/api/v1/participants", BodyStream(body), length=None, content_type="application/json")
    assert seen["status"] == 413
    assert seen["read_when_answered"] == len(body)
    assert seen["close"] is False


def test_a_body_larger_than_the_drain_is_not_read_and_the_answer_says_close(db):
    declared = DRAIN_MAX_BYTES + 1_000_000
    stream = BodyStream(b"x" * 1000)  # a client that waits for the answer before sending the rest
    seen = _call("/healthz", stream, length=declared)
    assert seen["status"] == 403
    assert seen["read_when_answered"] == 0
    assert seen["close"] is True


def test_a_chunked_body_larger_than_the_drain_is_read_no_further_and_the_answer_says_close(db):
    body = b"x" * (DRAIN_MAX_BYTES + 2_000_000)
    stream = BodyStream(body)
    seen = _call("/api/v1/participants", stream, length=None, content_type="application/json")
    assert seen["status"] == 413
    assert seen["read_when_answered"] < len(body)
    assert seen["close"] is True


def test_a_body_that_ends_early_closes_the_connection(db):
    stream = BodyStream(b"x" * 1000)  # the client promised 5000 bytes and stopped
    seen = _call("/healthz", stream, length=5000)
    assert seen["status"] == 403
    assert seen["close"] is True


def test_a_body_that_was_read_changes_nothing(db):
    seen = _call("/healthz", BodyStream(b""), length=0, method="GET")
    assert seen["status"] == 200
    assert seen["close"] is False
