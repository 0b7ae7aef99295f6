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
    for path, method, operation in _operations(client):
        assert {"400", "401", "404", "429"} <= set(operation["responses"]), f"{method} {path}"
        if method == "post":
            assert {"409", "413", "415", "422"} <= set(operation["responses"]), f"{method} {path}"
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in headers, f"{method} {path}"
