"""The period in the dashboards' query string: dates from 2000-01-01 to a year ahead, anything else (year 1, year
9999, not a date) is moved into that range or left out with a message on the page, never a server error."""

from __future__ import annotations

import datetime

import pytest
from django.http import QueryDict
from django.urls import reverse

from analytics.selectors.dashboard import program_report
from analytics.selectors.periods import EARLIEST, MAX_DAYS, Period, latest_day, merchant_today, parse_period
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db

ODD_PERIODS = [
    {"to": "0001-01-01"},
    {"from": "0001-01-01", "to": "0001-01-05"},
    {"to": "9999-12-31"},
    {"from": "9999-12-31", "to": "9999-12-31"},
    {"from": "0001-01-01", "to": "9999-12-31"},
    {"from": "2026-13-01"},
    {"from": "x" * 5000},
    {"from": "2026-01-01", "to": "2026-01-01\x00"},
    {"baseline_from": "0001-01-01", "baseline_to": "0001-01-02"},
    {"baseline_from": "9999-12-30", "baseline_to": "9999-12-31"},
    {"variant": "99999999999999999999999"},
    {"variant": "١٢"},
]


def _pages(tenant):
    program = ProgramFactory(merchant=tenant.merchant, currency=tenant.merchant.default_currency)
    return ["/admin/", reverse("admin:analytics_program_dashboard", args=[program.pk])]


@pytest.mark.parametrize("params", ODD_PERIODS)
def test_odd_dates_show_a_period_in_range_instead_of_an_error(tenant, params):
    for url in _pages(tenant):
        response = tenant.admin.get(url, params)

        assert response.status_code == 200, url
        shown = response.context["overview"]["period"] if url == "/admin/" else response.context["report"].period
        assert EARLIEST <= shown.start <= shown.end <= latest_day(tenant.merchant)


def test_a_date_out_of_range_is_moved_into_it_with_a_message(tenant):
    for url in _pages(tenant):
        response = tenant.admin.get(url, {"from": "0001-01-01", "to": "0001-01-05"}, follow=True)

        html = response.content.decode()
        assert "Dates go from 2000-01-01 to" in html, url
        assert 'value="2000-01-01"' in html  # the form shows the period used


def test_a_period_is_parsed_into_the_range_with_notes(merchant):
    today = merchant_today(merchant)

    def parse(query: str):
        return parse_period(QueryDict(query), merchant=merchant)

    assert parse("to=0001-01-01")[0] == Period(EARLIEST, EARLIEST)
    assert parse("to=9999-12-31")[0].end == latest_day(merchant)
    assert parse("from=9999-12-31&to=9999-12-31")[0] == Period(latest_day(merchant), latest_day(merchant))
    assert parse("")[0] == Period(today - datetime.timedelta(days=29), today)
    assert parse("")[1] == []
    assert parse("from=2026-02-01&to=2026-01-01")[0] == Period(datetime.date(2026, 1, 1), datetime.date(2026, 2, 1))
    period, notes = parse("from=2001-01-01&to=2026-01-01")
    assert period.days == MAX_DAYS
    assert period.end == datetime.date(2026, 1, 1)
    assert notes
    period, notes = parse("from=01/31/2026")
    assert period == Period(today - datetime.timedelta(days=29), today)
    assert notes == ["A date was not in the form YYYY-MM-DD; it was left out."]


def test_the_default_baseline_of_a_program_that_starts_in_year_one_is_in_range(tenant):
    program = ProgramFactory(merchant=tenant.merchant, starts_on=datetime.date(1, 1, 5))
    today = merchant_today(tenant.merchant)

    report = program_report(merchant=tenant.merchant, program=program, period=Period(today, today))

    assert report.baseline == Period(EARLIEST, EARLIEST)
    response = tenant.admin.get(reverse("admin:analytics_program_dashboard", args=[program.pk]))
    assert response.status_code == 200
