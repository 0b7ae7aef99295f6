"""Every changelist of both admin sites, with date filters a hand-edited or probing URL can carry: out-of-range years,
months and days, not-a-number parts, dates past 9999. Each is Django's "invalid filter" answer (a redirect to the
list with ?e=1) or the list itself, never a 500 (a ValueError or OverflowError from a date, or a database error)."""

from __future__ import annotations

import pytest
from django.db import models
from django.urls import reverse

from referral_saas.tenancy.admin_site import merchant_admin, ops_admin
from tests.conftest import staff_client
from tests.factories import FACTORY_FOR_MODEL, UserFactory

pytestmark = pytest.mark.django_db

BAD_PARTS = [
    "__year=99999",
    "__year=10000",
    "__year=0",
    "__year=-1",
    "__year=abc",
    "__year=9999",  # the date drill-down's "next year" is 10000
    "__year=9999&{f}__month=12",  # ... its "next month" too
    "__year=9999&{f}__month=12&{f}__day=31",  # ... and its "next day"
    "__year=2026&{f}__month=13",
    "__year=2026&{f}__month=0",
    "__year=2026&{f}__month=2&{f}__day=30",
    "__month=13",
    "__month=99999999999999999999",
    "__day=0",
    "__day=32",
    "__day=1.5",
    "__week_day=9",
    "__quarter=5",
    "__hour=25",
    "__year__gte=99999",
    "__year__lt=-5",
    "__date=99999-01-01",
    "__date=2026-02-30",
    "__gte=99999-01-01",
    "__gte=9999-12-31 23:59:59",
    "__lt=0001-01-01",
    "__lt=0000-01-01",
    "__range=2026-01-01,99999-01-01",
]


def _date_fields(model) -> list[str]:
    return [
        field.name
        for field in model._meta.concrete_fields
        if isinstance(field, models.DateField | models.DateTimeField)  # DateTimeField is a DateField; both named
    ]


def _cases(site):
    cases = []
    for model, model_admin in sorted(site._registry.items(), key=lambda item: item[0]._meta.label):
        fields = _date_fields(model)
        if model_admin.date_hierarchy and model_admin.date_hierarchy not in fields:
            fields.append(model_admin.date_hierarchy)
        for field in fields:
            cases.append(pytest.param(model, field, id=f"{model._meta.label}.{field}"))
    return cases


def _queries(field: str) -> list[str]:
    return ["?" + field + part.replace("{f}", field) for part in BAD_PARTS]


def _assert_no_5xx(client, url: str, field: str) -> None:
    client.raise_request_exception = False  # collect every 500 of the page, not only the first
    failures = []
    for query in _queries(field):
        response = client.get(url + query)
        if response.status_code >= 500:
            failures.append(query)
        elif response.status_code == 302:
            assert response["Location"].endswith("?e=1") or "e=1" in response["Location"], (query, response)
    assert failures == [], " ".join(failures)


def test_the_walk_covers_every_registered_changelist():
    walked = {param.values[0] for param in _cases(merchant_admin) + _cases(ops_admin)}
    undated = {m for m in list(merchant_admin._registry) + list(ops_admin._registry) if not _date_fields(m)}
    assert set(merchant_admin._registry) | set(ops_admin._registry) == walked | undated
    assert len(walked) >= 14


@pytest.mark.parametrize(("model", "field"), _cases(merchant_admin))
def test_a_bad_date_filter_on_a_merchant_changelist_is_not_a_500(tenant, model, field):
    factory = FACTORY_FOR_MODEL.get(model)
    if factory is not None:
        factory(tenant.merchant)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    _assert_no_5xx(tenant.admin, url, field)


@pytest.mark.parametrize(("model", "field"), _cases(ops_admin))
def test_a_bad_date_filter_on_an_ops_changelist_is_not_a_500(tenant, model, field):
    operator = UserFactory(is_superuser=True, is_staff=True)
    url = reverse(f"ops:{model._meta.app_label}_{model._meta.model_name}_changelist")
    _assert_no_5xx(staff_client(operator), url, field)


def test_a_bad_filter_answers_with_djangos_invalid_filter_redirect(tenant):
    response = tenant.admin.get(reverse("admin:programs_participant_changelist") + "?created_at__year=99999")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
    page = tenant.admin.get(response["Location"])
    assert page.status_code == 200


def test_good_date_filters_still_filter(tenant):
    from tests.factories import ProgramFactory, join

    program = ProgramFactory(merchant=tenant.merchant)
    participant, _code = join(program, email="dated@x.example")
    year = participant.created_at.year
    url = reverse("admin:programs_participant_changelist")
    change = reverse("admin:programs_participant_change", args=[participant.pk]).encode()

    assert change in tenant.admin.get(url + f"?created_at__year={year}").content
    assert (
        change
        in tenant.admin.get(url + f"?created_at__year={year}&created_at__month={participant.created_at.month}").content
    )
    assert change not in tenant.admin.get(url + f"?created_at__year={year - 1}").content


def test_the_csv_export_of_a_badly_filtered_list_is_the_list_not_a_500(tenant):
    response = tenant.admin.get(reverse("admin:programs_participant_export_csv") + "?created_at__year=99999")
    assert response.status_code == 302
