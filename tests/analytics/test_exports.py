"""CSV exports from the admin: streamed, with the changelist's filters applied, only the merchant's rows, safe cells."""

from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from analytics.models import DailyStats
from programs.models import Participant
from referral_saas.csv_export import CHUNK_SIZE, csv_cell, stream_csv
from tests.factories import ProgramFactory, join
from tracking.models import Conversion

pytestmark = pytest.mark.django_db


def _rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_participants_export_streams_the_filtered_changelist(tenant, other_tenant):
    program = ProgramFactory(merchant=tenant.merchant)
    join(program, email="ana@people.example", name="Ana Nowak")
    blocked, _code = join(program, email="bob@people.example", name="Bob Kowal")
    Participant.objects.for_merchant(tenant.merchant).filter(pk=blocked.pk).update(status="blocked")
    join(ProgramFactory(merchant=other_tenant.merchant), email="eve@other.example")
    url = reverse("admin:programs_participant_export_csv")

    everyone = _rows(tenant.admin.get(url))
    only_blocked = _rows(tenant.admin.get(url, {"status__exact": "blocked"}))
    searched = _rows(tenant.admin.get(url, {"q": "ana@"}))

    assert everyone[0][:3] == ["ID", "Name", "Email"]
    assert {row[2] for row in everyone[1:]} == {"ana@people.example", "bob@people.example"}
    assert [row[2] for row in only_blocked[1:]] == ["bob@people.example"]
    assert [row[2] for row in searched[1:]] == ["ana@people.example"]


def test_the_changelist_has_an_export_button_that_keeps_its_filters(tenant):
    html = tenant.admin.get(reverse("admin:programs_participant_changelist"), {"status__exact": "active"}).content
    assert b"/admin/programs/participant/export.csv?status__exact=active" in html


def test_conversions_export_follows_relations_and_keeps_money_exact(tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="friends")
    _participant, code = join(program, email="anna@people.example")
    tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "1001", "amount": "129.90", "currency": "PLN", "code": code.code,
         "customer": {"email": "buyer@x.example"}},
        format="json",
    )  # fmt: skip
    tenant.api.post("/api/v1/conversions", {"order_id": "1002", "amount": "10.00", "currency": "PLN"}, format="json")
    url = reverse("admin:tracking_conversion_export_csv")

    rows = _rows(tenant.admin.get(url, {"status__exact": "attributed"}))

    header, *body = rows
    assert len(body) == 1
    record = dict(zip(header, body[0], strict=True))
    assert record["Order id"] == "1001"
    assert record["Amount"] == "129.90"
    assert record["Program"] == "friends"
    assert record["Referrer"] == "anna@people.example"
    assert Conversion.objects.for_merchant(tenant.merchant).count() == 2


def test_referrals_export_and_the_selected_rows_action(tenant):
    program = ProgramFactory(merchant=tenant.merchant, slug="friends")
    _participant, code = join(program, email="anna@people.example")
    for n in range(3):
        tenant.api.post(
            "/api/v1/referrals", {"code": code.code, "customer": {"email": f"f{n}@x.example"}}, format="json"
        )
    rows = _rows(tenant.admin.get(reverse("admin:tracking_referral_export_csv")))
    assert len(rows) == 4
    chosen = list(program.referrals.values_list("pk", flat=True))[:2]
    response = tenant.admin.post(
        reverse("admin:tracking_referral_changelist"),
        {"action": "export_selected_csv", "_selected_action": chosen},
    )
    assert len(_rows(response)) == 3


def test_daily_stats_export_with_the_dashboards_filters(tenant):
    merchant = tenant.merchant
    program, other = ProgramFactory(merchant=merchant, slug="a"), ProgramFactory(merchant=merchant, slug="b")
    stats = DailyStats.objects.for_merchant(merchant)
    for day in (1, 2, 3):
        stats.create(program=program, day=datetime.date(2026, 5, day), clicks=day, referred_revenue=Decimal("0.10"))
    stats.create(program=other, day=datetime.date(2026, 5, 2), clicks=99)
    url = reverse("admin:analytics_dailystats_export_csv")
    rows = _rows(
        tenant.admin.get(url, {"program__id__exact": program.pk, "day__gte": "2026-05-02", "day__lte": "2026-05-03"})
    )
    header, *body = rows
    assert [(r[header.index("Day")], r[header.index("Clicks")]) for r in body] == [
        ("2026-05-03", "3"),
        ("2026-05-02", "2"),
    ]
    assert {r[header.index("Referred revenue")] for r in body} == {"0.10"}


def test_another_merchants_export_is_empty(tenant, other_tenant):
    join(ProgramFactory(merchant=tenant.merchant), email="ana@people.example")
    rows = _rows(other_tenant.admin.get(reverse("admin:programs_participant_export_csv")))
    assert rows[1:] == []


def test_export_needs_a_signed_in_teammate(client):
    response = client.get(reverse("admin:programs_participant_export_csv"))
    assert response.status_code == 302


def test_rows_are_generated_lazily_not_loaded_first():
    produced = []

    def rows():
        for n in range(3 * CHUNK_SIZE):
            produced.append(n)
            yield [n, f"name {n}"]

    response = stream_csv(rows(), header=["n", "name"], filename="x.csv")
    stream = iter(response.streaming_content)
    next(stream), next(stream), next(stream)  # BOM, header, first row
    assert len(produced) == 1
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'


def test_cells_that_look_like_formulas_are_defused():
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("@sum") == "'@sum"
    assert csv_cell(Decimal("-5.10")) == "-5.10"
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"


def test_the_dashboards_daily_stats_export_keeps_its_variant_filter(tenant):
    from analytics.selectors.periods import merchant_today
    from programs.models import ProgramVariant

    merchant = tenant.merchant
    program = ProgramFactory(merchant=merchant)
    a = ProgramVariant.objects.for_merchant(merchant).create(program=program, name="A")
    b = ProgramVariant.objects.for_merchant(merchant).create(program=program, name="B")
    day = merchant_today(merchant)
    DailyStats.objects.for_merchant(merchant).create(program=program, variant=a, day=day, clicks=100)
    DailyStats.objects.for_merchant(merchant).create(program=program, variant=b, day=day, clicks=7)
    page = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk]), {"variant": b.pk})

    header, *rows = _rows(tenant.admin.get(page.context["csv_url"]))

    assert [(row[header.index("Variant")], row[header.index("Clicks")]) for row in rows] == [("B", "7")]
    everything = _rows(tenant.admin.get(page.context["csv_url"].replace(f"&variant__id__exact={b.pk}", "")))
    assert len(everything) == 3


# --- spreadsheet formulas: every cell quoted, text that starts like a formula defused --------------------------------


def _excel_cells(text: str, separator: str) -> list[str]:
    """How Excel / LibreOffice cut a file into cells on `separator` (";" in pl, ro, ru) and line ends: never inside
    double quotes."""
    cells, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif (char == separator or char in "\r\n") and not quoted:
            cells.append(current)
            current = ""
            continue
        current += char
    return [*cells, current]


def _formula_cells(text: str) -> list[str]:
    found = []
    for separator in (",", ";"):
        for cell in _excel_cells(text, separator):
            value = cell.strip().removeprefix('"').lstrip()
            if value.startswith(("=", "+", "-", "@")) and not re.fullmatch(r'-\d+(\.\d+)?"?', value):
                found.append(value)  # a plain negative number is a number to a spreadsheet, not a formula
    return found


HOSTILE = ["a;=1+1", "=cmd", "  @SUM(1)", "-2+3", "\t=1", "+1", "b,=2", "\r=3", 'x";=HYPERLINK("http://e.example")']


def test_every_field_is_quoted_and_formulas_are_defused_in_each_cell():
    rows = [[n, text, Decimal("-12.50")] for n, text in enumerate(HOSTILE)]
    response = stream_csv(rows, header=["n", "note", "amount"], filename="x.csv")
    text = b"".join(response).decode("utf-8-sig")

    assert text.splitlines()[0] == '"n","note","amount"'
    assert '"0","a;=1+1","-12.50"' in text  # one cell whether the reader splits on "," or ";"
    assert _formula_cells(text) == []
    parsed = list(csv.reader(io.StringIO(text)))[1:]
    assert [row[1] for row in parsed] == [
        "a;=1+1",
        "'=cmd",
        "'  @SUM(1)",
        "'-2+3",
        "'\t=1",
        "'+1",
        "b,=2",
        "'\r=3",
        'x";=HYPERLINK("http://e.example")',
    ]
    assert {row[2] for row in parsed} == {"-12.50"}  # our own amounts stay numbers, negative ones too


def test_without_quoting_a_semicolon_would_start_a_formula_cell():
    """What the quoting protects against: the same row unquoted, read by a Polish spreadsheet."""
    assert _formula_cells("1,a;=1+1,-12.50") == ["=1+1,-12.50"]


def test_csv_cell_keeps_numbers_and_defuses_text_after_leading_spaces():
    assert csv_cell(Decimal("-12.50")) == "-12.50"
    assert csv_cell(-3) == "-3"
    assert csv_cell("-12.50") == "'-12.50"  # text someone typed, even when it looks like a number
    assert csv_cell("  =1") == "'  =1"
    assert csv_cell("\u00a0@x") == "'\u00a0@x"
    assert csv_cell("a;=1") == "a;=1"
    assert csv_cell({"k": "=1"}) == '{"k": "=1"}'


def test_a_participants_export_quotes_a_name_with_a_semicolon_and_a_formula(tenant):
    program = ProgramFactory(merchant=tenant.merchant)
    join(program, email="evil@people.example", name='Ann;=HYPERLINK("http://evil.example","x")')
    join(program, email="minus@people.example", name="-2+3")
    text = b"".join(tenant.admin.get(reverse("admin:programs_participant_export_csv")).streaming_content)
    text = text.decode("utf-8-sig")

    assert '"Ann;=HYPERLINK(""http://evil.example"",""x"")"' in text
    assert '"\'-2+3"' in text
    assert _formula_cells(text) == []
    assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines() if line)
