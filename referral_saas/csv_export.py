"""Streamed CSV exports for the merchant admin: the changelist's rows, with the filters on screen, never all in memory.

Use it on any TenantModelAdmin:

    from referral_saas.csv_export import CsvExportMixin

    @admin.register(Reward, site=merchant_admin)
    class RewardAdmin(CsvExportMixin, TenantModelAdmin):
        csv_columns = ["id", "participant.email", ("Program", "program.slug"), "status", "value", "currency",
                       ("Cost", lambda reward: reward.cost), "created_at"]

That adds an "Export CSV" button to the changelist (it exports every row the list's filters, search and date
drill-down select, in the list's order) and an "Export selected rows as CSV" action. A column is a field name, a
dotted path through relations ("program.slug"), or (header, path or callable). Rows are read with
`QuerySet.iterator()` in chunks and written to a StreamingHttpResponse as they come; relations named in the
columns are fetched with select_related.

Outside the admin, `stream_csv(rows, header=..., filename=...)` streams any iterable of rows.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

CHUNK_SIZE = 2000
# A text cell that starts with one of these (after any leading whitespace, which spreadsheets skip) is a formula to
# a spreadsheet: it is prefixed with ' (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Every field is quoted. Excel and LibreOffice in pl/ro/ru (and de, fr, ...) split on ";", not ",": unquoted,
# `x;=HYPERLINK(...)` would become two cells, the second a formula that no prefix on the first one defuses.
# Quoted, it stays one text cell whichever separator the reader picks. (A quoted number is still read as a number.)
QUOTING = csv.QUOTE_ALL

Column = str | tuple[str, str | Callable]


class _Echo:
    """csv.writer writes into this and gets the line back, to be yielded."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value) -> str:
    """One cell as text. Numbers, dates and booleans are written by us and kept as they are, so that a refund's
    -12.50 stays a number a spreadsheet can add up; every other value is text someone typed (names, emails, order
    ids, notes), and text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        import json

        value = json.dumps(value, sort_keys=True, default=str)
    return defuse_formula(str(value))


def defuse_formula(text: str) -> str:
    """Text a spreadsheet would read as a formula (`=1+1`, `  @SUM(1)`, `-2+3`, a leading tab) gets a leading '."""
    return "'" + text if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS) else text


def stream_csv(rows: Iterable[Sequence], *, header: Sequence[str], filename: str) -> StreamingHttpResponse:
    """A StreamingHttpResponse that writes `rows` (any iterable, consumed lazily) as CSV with a header line."""
    writer = csv.writer(_Echo(), quoting=QUOTING)

    def lines():
        yield "\ufeff"  # a BOM, so that spreadsheet programs read the file as UTF-8
        yield writer.writerow([defuse_formula(str(h)) for h in header])
        for row in rows:
            yield writer.writerow([csv_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _resolve(obj, dotted: str):
    for part in dotted.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part)
        if callable(obj) and not hasattr(obj, "all"):
            obj = obj()
    return obj


def _header(model, dotted: str) -> str:
    current = model
    field = None
    for part in dotted.split("."):
        try:
            field = current._meta.get_field(part)
        except (FieldDoesNotExist, AttributeError):
            return dotted
        current = field.related_model or current
    if len(dotted.split(".")) > 1:
        return dotted
    return str(capfirst(getattr(field, "verbose_name", dotted)))


def _relations(model, columns: Sequence[Column]) -> list[str]:
    """The select_related paths the dotted columns walk through."""
    paths = set()
    for column in columns:
        dotted = column[1] if isinstance(column, tuple) else column
        if not isinstance(dotted, str) or "." not in dotted:
            continue
        parts, current, walked = dotted.split("."), model, []
        for part in parts[:-1]:
            try:
                field = current._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if not (field.is_relation and (field.many_to_one or field.one_to_one)):
                break
            walked.append(part)
            current = field.related_model
        if walked:
            paths.add("__".join(walked))
    return sorted(paths)


def export_queryset(queryset, columns: Sequence[Column], *, filename: str) -> StreamingHttpResponse:
    """Stream `queryset` as CSV, one column per entry of `columns`, in chunks (never the whole set in memory)."""
    model = queryset.model
    header = [column[0] if isinstance(column, tuple) else _header(model, column) for column in columns]
    getters = []
    for column in columns:
        accessor = column[1] if isinstance(column, tuple) else column
        getters.append(accessor if callable(accessor) else (lambda obj, dotted=accessor: _resolve(obj, dotted)))
    related = _relations(model, columns)
    if related:
        queryset = queryset.select_related(*related)
    rows = ([get(obj) for get in getters] for obj in queryset.iterator(chunk_size=CHUNK_SIZE))
    return stream_csv(rows, header=header, filename=filename)


def export_filename(model, suffix: str = "") -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f"{model._meta.model_name}{'-' + suffix if suffix else ''}-{stamp}.csv"


class CsvExportMixin:
    """For a ModelAdmin: an "Export CSV" button (the filtered changelist) and an "export selected" action."""

    csv_columns: Sequence[Column] = ()
    change_list_template = "admin/csv_change_list.html"

    def get_csv_columns(self, request) -> Sequence[Column]:
        return self.csv_columns or [f.name for f in self.model._meta.concrete_fields]

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        urls = [
            path(
                "export.csv",
                self.admin_site.admin_view(self.csv_export_view),
                name="{}_{}_export_csv".format(*info),
            )
        ]
        return urls + super().get_urls()

    def csv_export_view(self, request):
        """Every row the changelist shows for this query string (filters, search, date drill-down, ordering)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            info = self.model._meta.app_label, self.model._meta.model_name
            return HttpResponseRedirect(
                reverse("admin:{}_{}_changelist".format(*info), current_app=self.admin_site.name)
            )
        queryset = changelist.get_queryset(request)
        return export_queryset(queryset, self.get_csv_columns(request), filename=export_filename(self.model))

    def changelist_view(self, request, extra_context=None):
        info = self.model._meta.app_label, self.model._meta.model_name
        url = reverse("admin:{}_{}_export_csv".format(*info), current_app=self.admin_site.name)
        query = request.GET.urlencode()
        extra_context = {**(extra_context or {}), "csv_export_url": f"{url}?{query}" if query else url}
        return super().changelist_view(request, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_view_permission(request):
            actions["export_selected_csv"] = (
                CsvExportMixin.export_selected_csv,
                "export_selected_csv",
                CsvExportMixin.export_selected_csv.short_description,
            )
        return actions

    @admin.action(description=_("Export the selected rows as CSV"))
    def export_selected_csv(self, request, queryset):
        return export_queryset(
            queryset, self.get_csv_columns(request), filename=export_filename(self.model, "selected")
        )
