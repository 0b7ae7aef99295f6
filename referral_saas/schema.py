"""OpenAPI: every operation documents the one error shape and the statuses it can answer with."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_serializer
from rest_framework import serializers


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, snake_case (validation_error, unknown_code, ...).")
    message = serializers.CharField(help_text="A human sentence.")
    fields = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Messages per field, for validation errors."
    )
    request_id = serializers.CharField(required=False, help_text="Quote this to support (server errors).")


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERRORS = {
    "400": "Invalid input: the `fields` say what is wrong.",
    "401": "Missing, malformed, unknown or revoked API key.",
    "404": "Not found (or not this merchant's).",
    "409": "Conflict, e.g. the same Idempotency-Key is still being processed.",
    "413": "Body over 64 KB.",
    "415": "Content-Type is not application/json.",
    "422": "Well-formed but against a rule (e.g. an Idempotency-Key reused for another request).",
    "429": "Rate limit reached; see `Retry-After`.",
}
CURSOR_NOT_FOUND = "The `cursor` is not one this API handed out."


def error_response(status: int, description: str | None = None) -> OpenApiResponse:
    """An error a view's own rules answer with, for its `extend_schema(responses=...)`; the errors every operation
    of its kind answers are added by ApiAutoSchema."""
    return OpenApiResponse(response=ErrorSerializer, description=description or ERRORS[str(status)])


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        """Adds the error responses the operation answers whatever its view does (see `_implied_errors`)."""
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        error = {"content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}}}
        for status, description in self._implied_errors(operation).items():
            operation["responses"].setdefault(status, {"description": description, **error})
        return operation

    def _implied_errors(self, operation: dict) -> dict[str, str]:
        """Only what can really happen (tests/test_schemathesis.py provokes each one): the key and the rate limit
        everywhere; on a POST the body is parsed and the Idempotency-Key honoured; a path parameter names
        something that may not exist; a `cursor` may not be one we handed out. Errors of a view's own rules
        (a filter's 400, an unknown program's 404, ...) are in its `responses`."""
        errors = {"401": ERRORS["401"], "429": ERRORS["429"]}
        if self.method == "POST":
            errors.update({status: ERRORS[status] for status in ("400", "409", "413", "415", "422")})
        parameters = operation.get("parameters", [])
        if any(p["in"] == "path" for p in parameters):
            errors["404"] = ERRORS["404"]
        elif any(p["in"] == "query" and p["name"] == "cursor" for p in parameters):
            errors["404"] = CURSOR_NOT_FOUND
        return errors

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    description="1-255 visible ASCII characters. The same key and body replay the first "
                    "response (for at least 24 hours); another body with the same key is 422; while the first "
                    "request runs, 409.",
                )
            )
        return parameters
