"""Merchant B's staff, on every page of the merchant admin, never see or change merchant A's rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from referral_saas.tenancy.admin_site import merchant_admin
from tests.factories import FACTORY_FOR_MODEL

pytestmark = pytest.mark.django_db

REGISTERED = sorted(merchant_admin._registry.items(), key=lambda item: item[0]._meta.label)
IDS = [model._meta.label for model, _admin in REGISTERED]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _row_of(model, merchant):
    factory = FACTORY_FOR_MODEL.get(model)
    assert factory is not None, f"add a factory for {model._meta.label} to tests/factories.FACTORY_FOR_MODEL"
    return factory(merchant)


def test_every_registered_model_has_a_factory_for_these_tests():
    assert [m for m, _a in REGISTERED if m not in FACTORY_FOR_MODEL] == []


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=IDS)
def test_change_history_and_delete_pages_of_another_merchant_are_404(model, model_admin, tenant, other_tenant):
    row = _row_of(model, tenant.merchant)
    # Control: the owner of the row sees it, so a 404 below is isolation, not a broken page.
    assert tenant.admin.get(_url(model, "change", row.pk)).status_code == 200
    assert tenant.admin.get(_url(model, "history", row.pk)).status_code == 200

    assert other_tenant.admin.get(_url(model, "change", row.pk)).status_code == 404
    assert other_tenant.admin.get(_url(model, "history", row.pk)).status_code == 404
    assert other_tenant.admin.get(_url(model, "delete", row.pk)).status_code in (403, 404)
    assert other_tenant.admin.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code in (403, 404)
    assert other_tenant.admin.post(_url(model, "change", row.pk), {}).status_code in (403, 404)
    assert type(row)._default_manager.filter(pk=row.pk).exists()  # nothing was deleted


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=IDS)
def test_changelist_search_and_filters_show_none_of_another_merchants_rows(model, model_admin, tenant, other_tenant):
    row = _row_of(model, tenant.merchant)
    change_link = _url(model, "change", row.pk)
    assert change_link.encode() in tenant.admin.get(_url(model, "changelist")).content  # control

    queries = [""]
    if model_admin.search_fields:
        queries.append("?q=" + str(row).split(" ")[0])
    for spec in model_admin.list_filter:
        if isinstance(spec, type):  # a SimpleListFilter (e.g. variant): its own parameter
            queries.append(f"?{spec.parameter_name}={row.pk}")
            continue
        name = spec if isinstance(spec, str) else spec[0]
        field = model._meta.get_field(name)
        value = getattr(row, field.attname)
        queries.append(f"?{name}__id__exact={value}" if field.is_relation else f"?{name}__exact={value}")
    for query in queries:
        response = other_tenant.admin.get(_url(model, "changelist") + query)
        assert response.status_code in (200, 302), query
        assert change_link.encode() not in response.content, query


def _autocomplete_cases():
    """(source model, field name, remote model) for every relation the merchant admin can autocomplete."""
    cases = []
    for source, _admin in REGISTERED:
        for field in source._meta.get_fields():
            if (field.is_relation and field.many_to_one) or getattr(field, "many_to_many", False):
                remote = field.related_model
                if remote in merchant_admin._registry and merchant_admin._registry[remote].search_fields:
                    cases.append((source, field.name, remote))
    return cases


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=IDS)
def test_autocomplete_never_offers_another_merchants_rows(model, model_admin, tenant, other_tenant):
    cases = [c for c in _autocomplete_cases() if c[2] is model]
    if not cases:
        pytest.skip(f"no registered model has a relation to {model._meta.label} to autocomplete")
    row = _row_of(model, tenant.merchant)
    for source, field_name, _remote in cases:
        params = {
            "app_label": source._meta.app_label,
            "model_name": source._meta.model_name,
            "field_name": field_name,
            "term": "",
        }
        mine = tenant.admin.get("/admin/autocomplete/", params)
        theirs = other_tenant.admin.get("/admin/autocomplete/", params)
        assert str(row.pk) in {r["id"] for r in mine.json()["results"]}
        assert theirs.status_code in (200, 403)
        if theirs.status_code == 200:
            assert str(row.pk) not in {r["id"] for r in theirs.json()["results"]}


def test_view_on_site_shortcut_is_not_exposed(tenant):
    assert tenant.admin.get(f"/admin/r/1/{tenant.merchant.pk}/").status_code == 404
