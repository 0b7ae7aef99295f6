"""The OpenAPI document: every operation is documented with examples and its error responses."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


def _operations(client):
    schema = json.loads(client.get("/api/schema/?format=json").content)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_has_an_example_response(client):
    missing = []
    for path, method, operation in _operations(client):
        examples = [
            content.get("examples")
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        ]
        if not any(examples):
            missing.append(f"{method.upper()} {path}")
    assert missing == []


def test_every_operation_documents_its_errors_and_writes_take_an_idempotency_key(client):
    """The statuses every operation of a kind answers; tests/test_schemathesis.py checks each one is answered."""
    for path, method, operation in _operations(client):
        responses = set(operation["responses"])
        assert {"401", "429"} <= responses, f"{method} {path}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        if method == "post":
            assert {"400", "409", "413", "415", "422"} <= responses, f"{method} {path}"
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in headers, f"{method} {path}"


def test_operations_that_cannot_fail_so_do_not_document_it(client):
    """No phantom errors: a list without filters or a cursor finds nothing missing and validates nothing."""
    operations = {f"{method.upper()} {path}": operation for path, method, operation in _operations(client)}
    for label in ("GET /api/v1/me", "GET /api/v1/programs"):
        assert set(operations[label]["responses"]) == {"200", "401", "429"}, label
    # A paginated list takes a cursor, and a cursor we never handed out is a 404; it validates nothing else.
    assert set(operations["GET /api/v1/webhook-endpoints"]["responses"]) == {"200", "401", "404", "429"}
    for label in ("GET /api/v1/codes/{code}", "DELETE /api/v1/webhook-endpoints/{endpoint_id}"):
        assert not {"400", "409", "413", "415", "422"} & set(operations[label]["responses"]), label


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/api/schema/"])
@pytest.mark.parametrize("authorization", ["Bearer rk_live_not-a-key", "Basic Zm9vOmJhcg==", "Bearer \u00e9"])
def test_the_public_documentation_ignores_any_authorization_header(client, path, authorization):
    response = client.get(path, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200
