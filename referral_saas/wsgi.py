"""The WSGI application gunicorn serves: Django, behind a reader for request bodies sent without a Content-Length."""

import json
import logging
import os
import tempfile
import uuid

from django.core.wsgi import get_wsgi_application

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


application = ChunkedBodyMiddleware(get_wsgi_application())
