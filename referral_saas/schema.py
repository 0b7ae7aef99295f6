"""OpenAPI: every operation documents the one error shape and the statuses it can answer with."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
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


ERRORS_ALWAYS = {
    "400": "Invalid input: the `fields` say what is wrong.",
    "401": "Missing, malformed, unknown or revoked API key.",
    "404": "Not found (or not this merchant's).",
    "429": "Rate limit reached; see `Retry-After`.",
}
ERRORS_ON_WRITE = {
    "409": "Conflict, e.g. the same Idempotency-Key is still being processed.",
    "413": "Body over 64 KB.",
    "415": "Content-Type is not application/json.",
    "422": "Well-formed but against a rule (unknown code, currency mismatch, refund too large, key reused, ...).",
}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        error = {"content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, direction).ref}}}
        errors = dict(ERRORS_ALWAYS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            errors.update(ERRORS_ON_WRITE)
        for status, description in errors.items():
            responses.setdefault(status, {"description": description, **error})
        return responses

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
