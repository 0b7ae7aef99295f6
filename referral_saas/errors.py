"""One error hierarchy for the domain, and the one place that turns errors into responses.

API errors always look like {"error": {"code": "snake_case", "message": "Human sentence.", "fields": {...}}};
HTML pages get friendly templates in the visitor's language.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain rule said no. Subclasses fix the HTTP status and the machine-readable code."""

    status_code = 400
    code = "bad_request"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, fields: dict | None = None):
        self.message = str(message or self.default_message)
        if code:
            self.code = code
        self.fields = fields or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_error"
    default_message = "Some fields are not valid."


class Unprocessable(ApplicationError):
    status_code = 422
    code = "unprocessable"
    default_message = "The request is well-formed but breaks a rule."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class PermissionDeniedError(ApplicationError):
    status_code = 403
    code = "permission_denied"
    default_message = "You are not allowed to do this."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class IdempotencyMismatch(Unprocessable):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used with a different request body."


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A service we depend on is unavailable. Nothing was changed; try again in a few seconds."


# Seconds a client is asked to wait (Retry-After) when PostgreSQL or Redis does not answer.
RETRY_AFTER_SECONDS = 5


def is_unavailable(exc: BaseException | None) -> bool:
    """PostgreSQL or Redis could not be reached (down, restarting, hanging): a 503 to retry, not a bug (a 500)."""
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError)


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return {"error": body}


_DRF_CODES = {
    drf.ParseError: ("malformed_json", None),
    drf.NotAuthenticated: ("not_authenticated", None),
    drf.AuthenticationFailed: ("authentication_failed", None),
    drf.PermissionDenied: ("permission_denied", None),
    drf.NotFound: ("not_found", None),
    drf.MethodNotAllowed: ("method_not_allowed", None),
    drf.NotAcceptable: ("not_acceptable", None),
    drf.UnsupportedMediaType: ("unsupported_media_type", None),
    drf.Throttled: ("rate_limited", None),
}


def _flatten_detail(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_detail(item) for item in detail]
    # A message may quote the caller's input ('"\ud800" is not a valid choice.'): lone surrogates cannot be encoded
    # as UTF-8, so they are replaced rather than turning a 400 into a 500 while rendering.
    return str(detail).encode("utf-8", "replace").decode("utf-8")


def api_exception_handler(exc: Exception, context: dict):
    """DRF's EXCEPTION_HANDLER: every error, expected or not, in the one JSON shape."""
    # Imported here: rest_framework.views loads the API settings, which import our authentication and services.
    from rest_framework.response import Response
    from rest_framework.views import set_rollback

    request = context.get("request")
    headers: dict[str, str] = {}

    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if is_unavailable(exc):
        logger.warning("dependency unavailable in API view: %s", type(exc).__name__, exc_info=True)
        exc = ServiceUnavailable()
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)

    if isinstance(exc, ApplicationError):
        status, body = exc.status_code, error_body(exc.code, exc.message, exc.fields)
    elif isinstance(exc, drf.ValidationError):
        detail = _flatten_detail(exc.detail)
        if not isinstance(detail, dict):
            detail = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
        status = 400
        body = error_body("validation_error", "Some fields are not valid.", detail)
    elif isinstance(exc, drf.APIException):
        code = next((c for cls, (c, _) in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        status = exc.status_code
        body = error_body(code, str(exc.detail))
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    else:
        request_id = getattr(request, "request_id", None)
        logger.exception("unhandled error in API view", extra={"path": getattr(request, "path", None)})
        status = 500
        body = error_body("server_error", "Something went wrong on our side.", request_id=request_id)

    set_rollback()
    return Response(body, status=status, headers=headers)


# --- HTML and non-DRF handlers (handler400/403/404/500 in urls.py) ------------------------------------------------


def _wants_json(request) -> bool:
    return request.path.startswith(("/api/", "/integrations/"))


def _error_page(request, status: int, title, message, **extra):
    if _wants_json(request):
        code = {
            400: "bad_request",
            403: "permission_denied",
            404: "not_found",
            500: "server_error",
            503: "service_unavailable",
        }[status]
        return JsonResponse(error_body(code, str(message), **extra), status=status)
    context = {"status": status, "title": title, "message": message, **extra}
    return render(request, "errors/error.html", context, status=status)


def bad_request(request, exception=None):
    return _error_page(request, 400, _("Bad request"), _("We could not understand that request."))


def permission_denied(request, exception=None):
    return _error_page(request, 403, _("Access denied"), _("You do not have access to this page."))


def page_not_found(request, exception=None):
    return _error_page(request, 404, _("Page not found"), _("We could not find the page you were looking for."))


def server_error(request):
    return _error_page(
        request,
        500,
        _("Something went wrong"),
        _("Sorry, something went wrong on our side. Please try again in a moment."),
        request_id=getattr(request, "request_id", None),
    )


def service_unavailable(request):
    """503 when PostgreSQL or Redis does not answer, from any view or middleware, with DEBUG on or off.

    The page is rendered without the session or the user (both may need the database that is down)."""
    from django.contrib.auth.models import AnonymousUser

    if _wants_json(request):
        response = JsonResponse(
            error_body(ServiceUnavailable.code, ServiceUnavailable.default_message),
            status=503,
        )
    else:
        context = {
            "status": 503,
            "title": _("Temporarily unavailable"),
            "message": _("We are having a short technical break. Nothing was changed; please try again in a moment."),
            "user": AnonymousUser(),
            "messages": [],
        }
        response = render(request, "errors/error.html", context, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
