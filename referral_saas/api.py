"""The tenant base for every shop-API view: the merchant and mode come from the API key, never from the body."""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.utils import translation
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from referral_saas import idempotency
from referral_saas.errors import PayloadTooLarge


class TenantAPIView(APIView):
    """Sets `request.merchant` and `request.livemode`; every POST may carry an `Idempotency-Key`.

    Subclasses read through `self.scoped(Model)` (this merchant's rows of this key's mode) or pass both to a
    selector; a live key never sees test data, nor the other way round.
    """

    def scoped(self, model):
        """`model`'s rows of the caller's merchant and mode (live or test)."""
        return model.objects.for_merchant(self.request.merchant).filter(livemode=self.request.livemode)

    def filtered(self, filterset_class, queryset):
        """`queryset` narrowed by the query string through a django-filter FilterSet; a bad value is a 400."""
        filterset = filterset_class(self.request.query_params, queryset=queryset)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return filterset.qs

    def initial(self, request, *args, **kwargs):
        # The API speaks English whatever the caller's Accept-Language: shops parse its messages.
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isascii() and length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body is over {settings.API_MAX_BODY_BYTES // 1024} KB.")
        super().initial(request, *args, **kwargs)  # authenticates, checks permissions and rate limits
        request.merchant = request.auth.merchant
        request.livemode = request.auth.mode == request.auth.Mode.LIVE
        if request.method == "POST":
            request.data  # noqa: B018  a body that is not JSON is refused (400/415) even where no field is read

    def dispatch(self, request, *args, **kwargs):
        """DRF's dispatch, with the handler run under the Idempotency-Key when a POST carries one."""
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = request.method.lower()
            handler = getattr(self, method, self.http_method_not_allowed)
            if method in self.http_method_names and method == "post" and idempotency.HEADER in request.headers:
                response = idempotency.run(request, lambda: handler(request, *args, **kwargs))
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response


class Cursor(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = "-created_at"

    def decode_cursor(self, request):
        """DRF's cursor, with its position checked: a cursor is the caller's input (base64 of a timestamp we
        wrote), and a forged one ("+20:00", not a date) must be a 404 like any bad cursor, not a database error."""
        decoded = super().decode_cursor(request)
        if decoded is None or decoded.position is None:
            return decoded
        try:
            when = parse_datetime(decoded.position)
            if when is None or when.tzinfo is None:
                raise ValueError(decoded.position)
            return decoded._replace(position=when.astimezone(datetime.UTC).isoformat())
        except (ValueError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None


def paginate(
    view: TenantAPIView, queryset, serializer_class: type[serializers.Serializer], ordering: str | None = None
):
    """A cursor-paginated list response (`next` / `previous` links, `limit` up to 200)."""
    paginator = Cursor()
    if ordering:
        paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def filter_parameters(filterset_class) -> list:
    """OpenAPI query parameters for a django-filter FilterSet used by a plain APIView."""
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    types = {"NumberFilter": OpenApiTypes.INT, "UtcIsoDateTimeFilter": OpenApiTypes.DATETIME}
    params = [
        OpenApiParameter(
            name,
            types.get(type(f).__name__, OpenApiTypes.STR),
            required=False,
            description=str(f.extra.get("help_text", "")),
            enum=[c for c, _label in f.extra["choices"]] if "choices" in f.extra else None,
        )
        for name, f in filterset_class.base_filters.items()
    ]
    return params + page_parameters()


def page_parameters() -> list:
    """OpenAPI query parameters of every cursor-paginated list (`paginate`)."""
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    return [
        OpenApiParameter("cursor", OpenApiTypes.STR, required=False, description="From `next`/`previous`."),
        OpenApiParameter("limit", OpenApiTypes.INT, required=False, description="Page size (1-200)."),
    ]


def page_of(serializer_class: type[serializers.Serializer]):
    """The OpenAPI shape of a cursor page of `serializer_class` items."""
    from drf_spectacular.utils import inline_serializer

    name = serializer_class.__name__.removesuffix("Output").removesuffix("Serializer")
    return inline_serializer(
        name=f"{name}Page",
        fields={
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last one."),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def page_example(item: dict) -> dict:
    """An example cursor page around one example item (OpenAPI docs)."""
    return {"next": "https://referrals.example/api/v1/…?cursor=cD0yMDI2LTExLTIz", "previous": None, "results": [item]}


_ID = re.compile(r"[0-9]{1,18}")


def is_id(value: str) -> bool:
    """A database id as a client may send it: ASCII digits only ("²" is a digit to str.isdigit, not to int())."""
    return bool(_ID.fullmatch(value or ""))
