"""The shop API's fast path (referral_saas.middleware.ShopApiMiddleware): /api/v1/ skips the staff's middleware and
keeps what every answer carries; a path the API does not know still goes through the whole stack."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_an_api_answer_keeps_the_security_headers_and_request_id_and_sets_no_cookie(tenant):
    response = tenant.api.get("/api/v1/programs", HTTP_ACCEPT_LANGUAGE="pl")
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert int(response["Content-Length"]) == len(response.content)
    assert not response.cookies  # no session, no CSRF token, no language cookie
    assert "Content-Language" not in response  # the API answers in English whatever the caller's language
    assert response.wsgi_request.resolver_match.view_name == "v1:programs"


def test_a_staff_session_does_not_open_the_api(tenant):
    """The API reads its key only: a signed-in staff browser without one is refused, as before."""
    response = tenant.admin.get("/api/v1/programs")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_path_the_api_does_not_know_goes_through_the_whole_stack(tenant):
    response = tenant.api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["X-Request-ID"]
    assert response.json()["error"]["code"] == "not_found"


def test_an_order_through_the_fast_path_is_stored_once_under_its_idempotency_key(tenant, program, referrer):
    body = {"order_id": "fast-1", "amount": "120.00", "currency": "PLN", "code": referrer[1].code}
    first = tenant.api.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = tenant.api.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 201), first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
