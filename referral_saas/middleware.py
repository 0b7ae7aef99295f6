"""Request id on every response and log line, and one access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.core.signals import got_request_exception
from django.dispatch import receiver

from referral_saas.errors import is_unavailable, service_unavailable
from referral_saas.logging import request_id_var

logger = logging.getLogger("referral_saas.request")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


UNAVAILABLE_ATTR = "_rs_dependency_unavailable"


@receiver(got_request_exception)
def _note_unavailable_dependency(sender, request=None, **kwargs) -> None:
    # Sent while Django handles the exception (sys.exc_info() is it), before it becomes a 500 response.
    import sys

    if request is not None and is_unavailable(sys.exc_info()[1]):
        setattr(request, UNAVAILABLE_ATTR, True)


class RequestIdMiddleware:
    """Takes a well-formed incoming X-Request-ID (from a proxy) or makes one, and echoes it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_INCOMING_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            if response.status_code == 500 and getattr(request, UNAVAILABLE_ATTR, False):
                # PostgreSQL or Redis failed somewhere below (a view, a middleware, DEBUG's error page or not).
                response = service_unavailable(request)
            response[REQUEST_ID_HEADER] = request_id
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(token)
