"""Every changelist of both admin sites (and its CSV export, and actions posted to it), with filters a hand-edited or
probing URL can carry: out-of-range years, months and days, dates past 9999, a NUL in a string, numbers PostgreSQL
cannot hold, ranges with one end, malformed lists, arrays and addresses, regular expressions, garbage ordering and
pages. Each is Django's "invalid filter" answer (a redirect to the list with ?e=1), a refused lookup (400) or the
list itself, never a 500 (a ValueError or OverflowError from a date, a NUL psycopg2 refuses, a database error)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.urls import NoReverseMatch, reverse

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


# --- any field, any value ---------------------------------------------------------------------------------------------

TEXT_VALUES = ["=%00", "__exact=%00", "__in=a,b,%00", "__icontains=%00", "__startswith=%00"]
NUMBER_VALUES = ["__in=1,abc", "__gt=abc", "__range=1", "__range=1,2,3", "=99999999999999999999",
                 "__in=1,99999999999999999999", "__lt=-99999999999999999999", "=1.5"]  # fmt: skip
DECIMAL_VALUES = ["__gt=1e999999999", "=NaN", "__lt=-Infinity", "__gte=abc", "__range=1", "=1e-999999999"]
EVERY_FIELD = ["__isnull=maybe", "__regex=(", "__iregex=[", "__exact=%00"]
BY_TYPE = [
    (models.CharField | models.TextField, TEXT_VALUES),
    (models.DecimalField, DECIMAL_VALUES),
    (models.IntegerField | models.ForeignKey, NUMBER_VALUES),
    (models.BooleanField, ["__exact=maybe", "=2"]),
    (models.UUIDField, ["=abc", "__in=abc,%00"]),
    (models.GenericIPAddressField, ["=abc", "__in=10.0.0.1,abc", "__startswith=%00"]),
    (models.JSONField, ["__has_key=%00", "__contains=[", "__key__gt=abc", "__0=%00"]),
    (ArrayField, ["__contains=x", "__contains={", "__len=abc", "__0=%00", "__overlap=%00"]),
]
ANY_LIST = ["o=abc", "o=-99999999999999999999", "o=1.x.-", "p=-1", "p=abc", "p=99999999999999999999", "all=&p=2",
            "q=%00", "_facets=1&e=%00"]  # fmt: skip


def _bad_values(model, model_admin) -> list[str]:
    """The bad values for the first field of each kind (text, number, decimal, relation, ...) of the model: the
    checks are the shared ChangeList's, by the kind of field, not by the page."""
    queries, kinds_seen = list(ANY_LIST), set()
    for field in model._meta.concrete_fields:
        kind, extra = next(((kind, extra) for kind, extra in BY_TYPE if isinstance(field, kind)), (type(field), []))
        kind = (kind, field.is_relation)
        if kind in kinds_seen:
            continue
        kinds_seen.add(kind)
        queries += [field.name + value for value in EVERY_FIELD + extra]
        if field.is_relation:
            queries += [f"{field.name}__id__exact=abc", f"{field.name}__id__exact=%00"]
    for spec in model_admin.list_filter:  # a filter of our own (SimpleListFilter) reads its own parameter
        if isinstance(spec, type) and issubclass(spec, admin.SimpleListFilter):
            queries += [f"{spec.parameter_name}={value}" for value in ("%00", "abc", "-1", "99999999999999999999")]
    return ["?" + query for query in queries]


def _value_cases(site):
    return [
        pytest.param(model, id=model._meta.label)
        for model in sorted(site._registry, key=lambda model: model._meta.label)
    ]


def _export_url(site_name: str, model) -> str | None:
    try:
        return reverse(f"{site_name}:{model._meta.app_label}_{model._meta.model_name}_export_csv")
    except NoReverseMatch:
        return None


def _walk_bad_values(client, site, model) -> None:
    """Every bad value on the list, on its CSV export (if it has one), and an action posted to the badly filtered
    list: no 5xx; a redirect is Django's invalid-filter answer (the export's goes back to the list)."""
    client.raise_request_exception = False  # collect every 500 of the page, not only the first
    url = reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
    export = _export_url(site.name, model)
    failures, bad_redirects = [], []
    for query in _bad_values(model, site._registry[model]):
        for target in (url, export):
            if target is None:
                continue
            response = client.get(target + query)
            if response.status_code >= 500:
                failures.append(target + query)
            elif response.status_code == 302 and not response["Location"].startswith(url):
                bad_redirects.append((target + query, response["Location"]))
    posted = client.post(url + "?id__in=1,abc", {"action": "delete_selected", "index": "0", "_selected_action": "1"})
    if posted.status_code >= 500:
        failures.append("POST " + url + "?id__in=1,abc")
    assert failures == [], "\n".join(failures)
    assert bad_redirects == []


@pytest.mark.parametrize("model", _value_cases(merchant_admin))
def test_a_bad_filter_value_on_a_merchant_changelist_is_not_a_500(tenant, model):
    factory = FACTORY_FOR_MODEL.get(model)
    if factory is not None:
        factory(tenant.merchant)
    _walk_bad_values(tenant.admin, merchant_admin, model)


@pytest.mark.parametrize("model", _value_cases(ops_admin))
def test_a_bad_filter_value_on_an_ops_changelist_is_not_a_500(tenant, model):
    factory = FACTORY_FOR_MODEL.get(model)
    if factory is not None:
        factory(tenant.merchant)
    operator = UserFactory(is_superuser=True, is_staff=True)
    _walk_bad_values(staff_client(operator), ops_admin, model)


PROBE_REPORTS = [  # the filters a probe of the running admin found to be a 500
    "programs_program?status__exact=%00",
    "programs_program?status__in=a,b,%00",
    "programs_program?currency__exact=%00",
    "programs_participant?email=%00",
    "programs_program?slug=%00",
    "programs_program?name__icontains=%00",
    "programs_program?id__range=1",
    "tracking_conversion?amount__gt=1e999999999",
]


@pytest.mark.parametrize("report", PROBE_REPORTS)
def test_a_value_the_database_cannot_take_is_djangos_invalid_filter(tenant, report):
    name, query = report.split("?")
    url = reverse(f"admin:{name}_changelist")
    response = tenant.admin.get(f"{url}?{query}")
    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"
    assert tenant.admin.get(response["Location"]).status_code == 200


def test_the_export_and_an_action_on_a_list_with_a_nul_filter_change_nothing(tenant):
    from programs.models import Program
    from tests.factories import ProgramFactory

    program = ProgramFactory(merchant=tenant.merchant, status=Program.Status.ACTIVE)
    url = reverse("admin:programs_program_changelist")
    export = tenant.admin.get(reverse("admin:programs_participant_export_csv") + "?status__exact=%00")
    assert export.status_code == 302
    assert export["Location"] == reverse("admin:programs_participant_changelist")
    response = tenant.admin.post(
        url + "?status__exact=%00", {"action": "pause", "index": "0", "_selected_action": str(program.pk)}
    )
    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"
    program.refresh_from_db()
    assert program.status == Program.Status.ACTIVE


@pytest.mark.parametrize("query", ["id__regex=(", "id__regex=.*", "customer_email__iregex=[", "order_id__regex=^1"])
def test_regular_expression_lookups_are_refused_on_every_list(tenant, query):
    response = tenant.admin.get(reverse("admin:tracking_conversion_changelist") + "?" + query)
    assert response.status_code == 400


def test_no_lookup_reaches_another_merchants_rows(tenant, other_tenant):
    from tests.factories import ProgramFactory, join

    theirs = ProgramFactory(merchant=other_tenant.merchant, slug="theirs")
    participant, _code = join(theirs, email="theirs@x.example")
    participants = reverse("admin:programs_participant_changelist")
    codes = reverse("admin:tracking_referralcode_changelist")
    assert tenant.admin.get(f"{codes}?program__merchant__slug={other_tenant.merchant.slug}").status_code == 400
    assert tenant.admin.get(f"{codes}?program__slug=theirs").status_code == 400
    for url in (f"{codes}?program__id__exact={theirs.pk}", f"{participants}?id__in={participant.pk}"):
        response = tenant.admin.get(url)
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []


def _autocomplete_cases():
    return [
        pytest.param(site, model, field, id=f"{site.name}:{model._meta.label}.{field}")
        for site in (merchant_admin, ops_admin)
        for model, model_admin in sorted(site._registry.items(), key=lambda item: item[0]._meta.label)
        for field in model_admin.autocomplete_fields
    ]


@pytest.mark.parametrize(("site", "model", "field"), _autocomplete_cases())
@pytest.mark.parametrize("term", ["%00", "anna%00", "%00%00"])
def test_an_autocomplete_term_with_a_nul_finds_nothing(tenant, site, model, field, term):
    from tests.factories import ProgramFactory, join

    join(ProgramFactory(merchant=tenant.merchant), email="anna@x.example", name="Anna")
    client = tenant.admin if site is merchant_admin else staff_client(UserFactory(is_superuser=True, is_staff=True))
    query = f"app_label={model._meta.app_label}&model_name={model._meta.model_name}&field_name={field}"
    found = client.get(reverse(f"{site.name}:autocomplete") + f"?{query}&term=anna")
    assert found.status_code == 200
    assert found.json()["results"]  # control: the search works
    response = client.get(reverse(f"{site.name}:autocomplete") + f"?{query}&term={term}")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_autocomplete_walk_has_fields_to_walk():
    assert len(_autocomplete_cases()) >= 1
