"""Calling `referral_saas.wsgi.application` the way gunicorn does, with a hand-built environ: for the tests of what
the test client cannot send (no CONTENT_LENGTH, a body nobody reads, a form in another charset)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

from referral_saas.wsgi import application


class BodyStream(io.BytesIO):
    """The request body as gunicorn hands it over (de-chunked); remembers how far it was read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.read_bytes = self.tell()
        return chunk


def wsgi_environ(path: str, body, *, length: int | None, content_type: str, method: str = "POST", **extra) -> dict:
    """A request's environ; `body` is bytes or a stream; `length` None sends it chunked (no CONTENT_LENGTH)."""
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
        "wsgi.input": BodyStream(body) if isinstance(body, bytes) else body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **extra,
    }
    if length is None:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(length)
    return environ


def call_wsgi(environ: dict, *, on_answer: Callable[[int], None] | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of the application's answer; `on_answer(status)` runs when the status line goes out."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)
        if on_answer is not None:
            on_answer(seen["status"])

    result = application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return seen["status"], seen["headers"], content
