"""The WSGI application gunicorn serves: Django (whose form bodies are UTF-8), behind a reader for request bodies sent
without a Content-Length, behind a drain for the bodies nobody read (so that a kept-alive connection stays usable)."""

import codecs
import contextlib
import gc
import json
import logging
import os
import tempfile
import time
import uuid

import django
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http.multipartparser import MultiPartParserError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_saas.settings")

logger = logging.getLogger("referral_saas.request")

# Outside the API a chunked body is rare (browsers always send a Content-Length); the admin's largest upload, a
# coupon CSV, is 8 MB.
OTHER_MAX_BODY_BYTES = 10 * 1024 * 1024
_READ_SIZE = 64 * 1024


class ChunkedBodyMiddleware:
    """Gives Django a body sent with `Transfer-Encoding: chunked` (curl with `-T -` or `-H 'Transfer-Encoding:
    chunked'`, HTTP client libraries streaming a body, some proxies).

    gunicorn hands such a body over de-chunked in `wsgi.input` but without CONTENT_LENGTH, and Django reads
    CONTENT_LENGTH bytes: none, so a JSON POST looked empty and was answered "field required". Here the body is
    read up to the limit (the API's API_MAX_BODY_BYTES under /api/, OTHER_MAX_BODY_BYTES elsewhere) and passed on
    with its length, like any other request. A body over the limit is a 413 at once, without reading the rest:
    under /api/ with the API's JSON error (`payload_too_large`), as a Content-Length over the limit is.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked or environ.get("CONTENT_LENGTH"):
            return self.app(environ, start_response)
        from django.conf import settings

        is_api = environ.get("PATH_INFO", "").startswith("/api/")
        limit = settings.API_MAX_BODY_BYTES if is_api else OTHER_MAX_BODY_BYTES
        body = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115  closed by the WSGI server
        size = 0
        stream = environ["wsgi.input"]
        while size <= limit:
            chunk = stream.read(min(_READ_SIZE, limit + 1 - size))
            if not chunk:
                break
            body.write(chunk)
            size += len(chunk)
        if size > limit:
            body.close()
            return _too_large(environ, start_response, limit=limit, is_api=is_api)
        body.seek(0)
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(size)
        # From here on it is an ordinary request with a known length (Content-Length and chunked together would
        # be contradictory).
        del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)


def _too_large(environ, start_response, *, limit: int, is_api: bool):
    from referral_saas.errors import error_body
    from referral_saas.logging import request_id_var

    request_id = uuid.uuid4().hex
    message = f"The request body is over {limit // 1024} KB."
    if is_api:
        payload = json.dumps(error_body("payload_too_large", message)).encode()
        content_type = "application/json"
    else:
        payload, content_type = message.encode(), "text/plain; charset=utf-8"
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    token = request_id_var.set(request_id)
    try:  # the access line RequestIdMiddleware writes for the requests that reach Django
        logger.info("%s %s 413", method, path, extra={"method": method, "path": path, "status": 413})
    finally:
        request_id_var.reset(token)
    start_response(
        "413 Content Too Large",
        [("Content-Type", content_type), ("Content-Length", str(len(payload))), ("X-Request-ID", request_id)],
    )
    return [payload]


# --- form bodies ---------------------------------------------------------------------------------------------------

FORM_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


class Request(WSGIRequest):
    """Django's request, whose form body (request.POST) is UTF-8 or refused, once.

    Browsers post our forms as UTF-8 and say no charset. A form body that names another one (latin-1, utf-16, an
    unknown or a non-text codec like rot13) is a 400 Bad Request: Django refused some of them and crashed on
    others, and it raised again each time request.POST was read; CsrfViewMiddleware reads it first, and with DEBUG
    on the error page read it again, so the second error escaped Django and gunicorn answered a bare 500. Here
    every failure to read the form marks it as read (empty), as Django does for its other body errors, so each
    error page renders: a 400 (DEBUG's technical page with DEBUG on; the friendly page, JSON under /api/, off).
    A UTF-8 alias ("utf8") is read as UTF-8.
    """

    def _load_post_and_files(self):
        if self.method == "POST" and self.content_type in FORM_CONTENT_TYPES:
            charset = self.content_params.get("charset")
            if charset is not None and not _is_utf8(charset):
                self._mark_post_parse_error()
                raise BadRequest("Form bodies must be UTF-8 (charset=utf-8, or no charset).")
            if charset is not None:
                self._encoding = "utf-8"
        try:
            super()._load_post_and_files()
        except (BadRequest, SuspiciousOperation, MultiPartParserError):
            self._mark_post_parse_error()
            raise
        except (UnicodeError, LookupError, ValueError) as exc:
            self._mark_post_parse_error()
            raise BadRequest("The form body could not be read.") from exc


class Handler(WSGIHandler):
    request_class = Request


# --- bodies nobody read ---------------------------------------------------------------------------------------------

# A body no one read is read to its end (and thrown away) up to this much, so that the connection can carry the
# next request: the largest body we take anywhere (a coupon CSV in the admin), which browsers and shops may well
# send to an endpoint that refuses it before reading (a 413, a 403 CSRF failure, a 404). Beyond it, or when the
# client stalls, the connection is closed after the answer, and the answer says so (Connection: close).
DRAIN_MAX_BYTES = OTHER_MAX_BODY_BYTES
DRAIN_IDLE_SECONDS = 5.0
DRAIN_TOTAL_SECONDS = 30.0


class _TrackedInput:
    """wsgi.input that counts what was read of it: whether the body was read to its end."""

    def __init__(self, stream, length: int | None):
        self.stream = stream
        self.length = length  # None: chunked, read until the stream ends
        self.consumed = 0
        self.ended = False

    def _seen(self, data: bytes, size) -> bytes:
        self.consumed += len(data)
        if not data and size != 0:
            self.ended = True
        return data

    def read(self, size=-1):
        return self._seen(self.stream.read() if size is None or size < 0 else self.stream.read(size), size)

    def readline(self, size=-1):
        return self._seen(self.stream.readline() if size is None or size < 0 else self.stream.readline(size), size)

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    @property
    def finished(self) -> bool:
        # A body that ends before its Content-Length is not finished: the client went away or lied.
        return self.ended if self.length is None else self.consumed >= self.length

    def drain(self, sock) -> bool:
        """Read the rest and throw it away: True once it ended, False when it is over DRAIN_MAX_BYTES, the client
        stalls, or the stream breaks."""
        if self.length is not None and self.length - self.consumed > DRAIN_MAX_BYTES:
            return False
        prior = sock.gettimeout() if sock is not None else None
        deadline = time.monotonic() + DRAIN_TOTAL_SECONDS
        drained = 0
        try:
            while not self.finished:
                left = deadline - time.monotonic()
                if left <= 0 or drained > DRAIN_MAX_BYTES:
                    return False
                if sock is not None:
                    sock.settimeout(min(left, DRAIN_IDLE_SECONDS))
                want = _READ_SIZE if self.length is None else min(_READ_SIZE, self.length - self.consumed)
                chunk = self.read(want)
                if not chunk:
                    return self.finished
                drained += len(chunk)
            return True
        except Exception:  # a timeout, a reset, a malformed chunk: where the next request starts is unknown
            return False
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(prior)


def _close_after_response(environ) -> None:
    """Have the server close the connection after this answer and say so in it (Connection: close).

    WSGI gives an application no way to ask, and gunicorn drops a Connection header set by the application
    (hop-by-hop). Its response object is reachable through the `wsgi.early_hints` callback it puts in the environ
    (a closure over the request and the response): `force_close()` makes it answer `Connection: close` and close.
    Another server (or a gunicorn without that callback) is left as it is; tests/system proves gunicorn's."""
    hints = environ.get("wsgi.early_hints")
    code, cells = getattr(hints, "__code__", None), getattr(hints, "__closure__", None)
    if code is None or not cells:
        return
    for name, cell in zip(code.co_freevars, cells, strict=False):
        response = cell.cell_contents if name == "resp" else None
        if callable(getattr(response, "force_close", None)):
            response.force_close()


class UnreadBodyMiddleware:
    """A body the application did not read to its end is drained before the answer goes out.

    gunicorn (gthread workers: `--threads`) answered such a request with `Connection: keep-alive`, then read at
    most 64 KB of what was left and closed the socket: a client that sent the next request on that connection (a
    `requests.Session`, a browser) met a dropped connection, or a reset mid-upload. Here the rest is read and
    thrown away (DRAIN_MAX_BYTES, with time limits), so the connection carries the next request; when that is not
    possible the answer says `Connection: close`, and the server closes after it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        tracked = _track_body(environ)
        if tracked is None:
            return self.app(environ, start_response)

        def start(status, headers, exc_info=None):
            if not tracked.finished and not tracked.drain(environ.get("gunicorn.socket")):
                _close_after_response(environ)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _track_body(environ) -> _TrackedInput | None:
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
        length = None
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0:
            return None
    tracked = _TrackedInput(stream, length)
    environ["wsgi.input"] = tracked
    return tracked


def settle_heap() -> None:
    """Import what the first requests would import, then move every object alive now out of the garbage
    collector's sight (`gc.freeze()`): the modules, URL patterns, views and settings of a worker live as long as it.

    Without it, each full collection walked those ~175,000 objects: in `POST /api/v1/conversions`, one request in
    a few hundred stopped for 50-120 ms (with the requests queued behind it on that worker: the p99), and the
    collector took ~10% of a request's CPU. After it, a full collection takes a few ms (docs/benchmarks.md).
    Called here, in each gunicorn worker, once it has loaded the app (we do not `--preload`); each Celery pool
    process does the same after its fork (referral_saas.celery, `worker_process_init`)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  imports every view module (lazy until the first request)
    gc.collect()
    gc.freeze()


django.setup(set_prefix=False)  # what get_wsgi_application() does before making its handler
application = UnreadBodyMiddleware(ChunkedBodyMiddleware(Handler()))
settle_heap()
