"""Request id on every response and log line, and one access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.urls import Resolver404, get_resolver

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


class ShopApiMiddleware:
    """The shop API's fast path: `/api/v1/...` skips the middleware an API-key request does not use.

    The shop API authenticates by its key alone (DRF: ApiKeyAuthentication), answers in English whatever the
    caller's language (TenantAPIView.initial), and its views are CSRF-exempt (no cookie is ever read). Sessions,
    the visitor's language, CSRF, the staff's login, allauth, messages and the staff's merchant are of no use to
    it, and running them cost a tenth of an order's Python time at checkout (docs/benchmarks.md). Placed where
    tracking.middleware.ReferralLinkMiddleware is, after the request id and access log, SecurityMiddleware and
    XFrameOptionsMiddleware, so every answer keeps those.

    The view is found and called as Django's handler does (resolver match on the request, a deferred response
    rendered). A path the URLconf does not know goes on through the whole stack, which answers the 404 as before
    (CommonMiddleware's slash redirect included).
    """

    PREFIX = "/api/v1/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.PREFIX):
            return self.get_response(request)
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        if callable(getattr(response, "render", None)):
            response = response.render()
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
