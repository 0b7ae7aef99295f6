"""Health endpoints, request ids, structured logs and the error shapes people and shops see."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import RequestFactory

from referral_saas import errors, redis_client
from referral_saas.logging import JsonFormatter, request_id_var

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_services(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency_with_latency(client, settings):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    for name in ("postgres", "redis"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0
    # The broker Celery uses: Redis by default (the same server the Redis check asked), RabbitMQ when configured.
    broker = body["checks"]["broker"]
    assert broker["status"] == "ok"
    assert broker["transport"] == ("amqp" if settings.BROKER_IS_AMQP else "redis")


def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    redis_client.get_redis.cache_clear()
    try:
        response = client.get("/readyz")
    finally:
        redis_client.get_redis.cache_clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["postgres"]["status"] == "ok"


def test_readyz_is_503_when_the_rabbitmq_broker_is_unreachable(client, settings, monkeypatch):
    settings.BROKER_IS_AMQP = True
    # Celery reads the broker from this variable before its configuration. Nothing listens on port 1.
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:secret@127.0.0.1:1//")
    response = client.get("/readyz")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["status"] == "error"
    assert broker["transport"] == "amqp"
    assert "secret" not in broker["url"]


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_a_well_formed_incoming_request_id_is_kept_and_a_malicious_one_replaced(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-1234abcd")["X-Request-ID"] == "lb-1234abcd"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="evil\nheader injection")["X-Request-ID"]
    assert replaced != "evil\nheader injection"
    assert len(replaced) == 32


def test_request_log_line_names_the_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="referral_saas.request"):
        response = client.get("/healthz")
    records = [r for r in caplog.records if r.name == "referral_saas.request"]
    assert records, "one access-log line per request"
    assert records[-1].request_id == response["X-Request-ID"]
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == response["X-Request-ID"]
    assert line["status"] == 200
    assert line["path"] == "/healthz"


def test_log_lines_outside_a_request_say_so():
    assert request_id_var.get() == "-"


def test_unknown_api_route_is_a_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_page_is_a_friendly_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b'<html lang="en">' in response.content


def test_server_error_page_shows_a_reference_to_quote():
    request = RequestFactory().get("/somewhere/")
    request.request_id = "abc123def456"
    response = errors.server_error(request)
    assert response.status_code == 500
    assert b"abc123def456" in response.content


def test_server_error_on_an_api_path_is_json_with_the_request_id():
    request = RequestFactory().get("/api/v1/me")
    request.request_id = "abc123def456"
    response = errors.server_error(request)
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": {
            "code": "server_error",
            "message": str(errors._("Sorry, something went wrong on our side. Please try again in a moment.")),
            "request_id": "abc123def456",
        }
    }


def test_an_unexpected_exception_in_an_api_view_is_a_json_500(api_client, monkeypatch):
    from referral_saas.tenancy.api import MeApi

    def boom(self, request):
        raise RuntimeError("bug")

    monkeypatch.setattr(MeApi, "get", boom)
    response = api_client.get("/api/v1/me")
    assert response.status_code == 500
    body = response.json()["error"]
    assert body["code"] == "server_error"
    assert body["request_id"] == response["X-Request-ID"]
    assert "bug" not in body["message"]


def test_openapi_schema_and_offline_docs_are_served(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/me" in json.loads(schema.content)["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content  # served by the sidecar, no CDN
