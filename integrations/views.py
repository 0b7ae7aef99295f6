"""The inbound endpoint: /integrations/<provider>/<token>/webhook.

The token finds the connection (256 random bits in the URL), the platform's signature on the raw body proves the
sender (constant time, current and previous secret); the event is stored once and answered 200 at once, a worker
processes it. A bad signature is 401 and nothing is stored; an event already stored is 200 again (the platform
stops retrying). Errors are JSON in the API's shape.
"""

from __future__ import annotations

import json
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.models import Connection
from integrations.providers import provider_for
from integrations.providers.base import BadPayload
from integrations.services import ga4_click_record, inbound_event_store
from integrations.services.woocommerce import woocommerce_auth_callback
from referral_saas import ratelimit
from referral_saas.errors import ApplicationError, error_body
from tracking.clicks import client_ip

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
@require_POST
def webhook(request, provider: str, token: str):
    handler = provider_for(provider)
    connection = (
        Connection.all_merchants.select_related("merchant")  # the URL names no merchant: found by its token
        .filter(provider=provider, inbound_token=token)
        .first()
        if handler is not None and not handler.marketing and len(token) <= 64
        else None
    )
    if connection is None:
        return _error(404, "not_found", "No connection has this webhook URL.")
    body = request.body
    if handler.unsigned_ping(body=body, headers=request.headers):
        return JsonResponse({"received": True, "ping": True})
    if not handler.verify(connection=connection, body=body, headers=request.headers):
        return _error(401, "bad_signature", "The signature does not match this connection's secret.")
    try:
        inbound = handler.inbound(body=body, headers=request.headers)
    except BadPayload as exc:
        return _error(400, "bad_payload", str(exc))
    event, created = inbound_event_store(connection=connection, inbound=inbound, body=body, headers=request.headers)
    return JsonResponse({"received": True, "duplicate": not created, "event": event.event_id})


@csrf_exempt
@require_POST
def woocommerce_callback(request):
    """WooCommerce's one-click authorization posts the new key pair here (services/woocommerce.py verifies it)."""
    try:
        connection = woocommerce_auth_callback(body=request.body)
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    return JsonResponse({"connected": True, "id": connection.pk, "webhook_url": connection.webhook_url})


GA_BEACON_PER_MINUTE = 30  # per IP: a visitor's browser tells one click per landing
GA_BEACON_MAX_BODY = 1024


@csrf_exempt
def ga_click(request):
    """`POST /t/ga` {click_id, code, ga_client_id}: referral.js on the landing page tells us the GA client id of a
    click (services/ga4.py). Public: rate-limited per IP, CSRF-exempt (a beacon from the shop's page, no cookie of
    ours is read); every refusal is JSON. The body may come as text/plain (sendBeacon without a CORS preflight)."""
    response = _ga_click(request)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


def _ga_click(request) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "POST the click id, the code and the GA client id as JSON.")
        response["Allow"] = "POST"
        return response
    allowed, wait = ratelimit.hit(f"ga-click-ip:{client_ip(request)}", limit=GA_BEACON_PER_MINUTE, window_seconds=60)
    if not allowed:
        response = _error(429, "rate_limited", "Too many requests. Try again in a minute.")
        response["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > GA_BEACON_MAX_BODY:  # refused before reading it
        return _error(413, "payload_too_large", "The body is larger than a click beacon.")
    body = request.body
    if len(body) > GA_BEACON_MAX_BODY:
        return _error(413, "payload_too_large", "The body is larger than a click beacon.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "bad_json", "The body is not JSON.")
    if not isinstance(data, dict):
        return _error(400, "bad_json", "The body is not a JSON object.")
    try:
        queued = ga4_click_record(
            click_id=data.get("click_id"), code=data.get("code"), ga_client_id=data.get("ga_client_id")
        )
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    return JsonResponse({"queued": queued}, status=202 if queued else 200)
