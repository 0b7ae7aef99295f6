"""A request body the application answered without reading (a 413, a CSRF 403, a 404) is read to its end and thrown
away before the answer goes out, so that a kept-alive connection can carry the next request; a body too large for
that, or a client that stalls, gets an answer that says `Connection: close`.

gunicorn's threaded workers (the Procfile's) answered such requests "keep-alive", drained at most 64 KB and closed:
the client's next request on the connection met a closed socket. These call `referral_saas.wsgi.application` with
a hand-built environ; tests/system/test_hostile.py does it through the real servers.
"""

from __future__ import annotations

import io
import sys

import pytest

from referral_saas.wsgi import DRAIN_MAX_BYTES, application

pytestmark = pytest.mark.django_db(transaction=True)  # the real handler opens and closes connections per request


class _Stream(io.BytesIO):
    """The request body as gunicorn hands it over; remembers how much was read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.read_bytes = self.tell()
        return chunk


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
    server_response = _ServerResponse()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.early_hints": _early_hints(server_response),
    }
    if length is None:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(length)
    seen = {}

    def start_response(status, headers, exc_info=None):
        # What the server has been told when it writes the status line and its Connection header.
        seen["status"], seen["read_when_answered"] = int(status.split()[0]), stream.read_bytes
        seen["close"] = server_response.closes

    result = application(environ, start_response)
    try:
        b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
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
    stream = _Stream(body)
    seen = _call(path, stream, length=size)
    assert seen["status"] == status
    assert seen["read_when_answered"] == size
    assert seen["close"] is False


def test_a_chunked_body_over_the_limit_is_drained_too(db):
    body = b"x" * 200_000
    seen = _call("/api/v1/participants", _Stream(body), length=None, content_type="application/json")
    assert seen["status"] == 413
    assert seen["read_when_answered"] == len(body)
    assert seen["close"] is False


def test_a_body_larger_than_the_drain_is_not_read_and_the_answer_says_close(db):
    declared = DRAIN_MAX_BYTES + 1_000_000
    stream = _Stream(b"x" * 1000)  # a client that waits for the answer before sending the rest
    seen = _call("/healthz", stream, length=declared)
    assert seen["status"] == 403
    assert seen["read_when_answered"] == 0
    assert seen["close"] is True


def test_a_chunked_body_larger_than_the_drain_is_read_no_further_and_the_answer_says_close(db):
    body = b"x" * (DRAIN_MAX_BYTES + 2_000_000)
    stream = _Stream(body)
    seen = _call("/api/v1/participants", stream, length=None, content_type="application/json")
    assert seen["status"] == 413
    assert seen["read_when_answered"] < len(body)
    assert seen["close"] is True


def test_a_body_that_ends_early_closes_the_connection(db):
    stream = _Stream(b"x" * 1000)  # the client promised 5000 bytes and stopped
    seen = _call("/healthz", stream, length=5000)
    assert seen["status"] == 403
    assert seen["close"] is True


def test_a_body_that_was_read_changes_nothing(db):
    seen = _call("/healthz", _Stream(b""), length=0, method="GET")
    assert seen["status"] == 200
    assert seen["close"] is False
