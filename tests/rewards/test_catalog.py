"""Catalog items have one set of rules (rewards.services.catalog) whichever door writes them: the admin form saves
through the service, and a refusal is shown next to the field it is about."""

from __future__ import annotations

from decimal import Decimal

import pytest

from referral_saas.errors import ValidationFailed
from rewards.models import CatalogItem
from rewards.services import catalog_item_create, catalog_item_update, catalog_item_validate
from tests.factories import ProgramFactory, coupon_pool
from tests.rewards.helpers import catalog_item_form

pytestmark = pytest.mark.django_db

CATALOG = "/admin/rewards/catalogitem/"


def _errors(response) -> dict:
    return {field: [str(m) for m in messages] for field, messages in response.context["adminform"].form.errors.items()}


def test_the_admin_adds_an_item_through_the_service_and_lands_on_the_list(tenant, program):
    response = tenant.admin.post(f"{CATALOG}add/", catalog_item_form(program))
    assert response.status_code == 302
    item = CatalogItem.objects.for_merchant(tenant.merchant).get()
    assert (item.merchant, item.program, item.points, item.value) == (tenant.merchant, program, 500, 20)
    assert response["Location"] == CATALOG


def test_the_admin_changes_an_item_through_the_service_and_a_refusal_is_shown_on_the_field(tenant, program):
    item = catalog_item_create(merchant=tenant.merchant, program=program, name="Voucher", points=500, value=20)
    assert tenant.admin.post(f"{CATALOG}{item.pk}/change/", catalog_item_form(program, value="25")).status_code == 302
    item.refresh_from_db()
    assert item.value == 25

    refused = tenant.admin.post(
        f"{CATALOG}{item.pk}/change/", catalog_item_form(program, kind="percent_coupon", value="150")
    )
    assert refused.status_code == 200
    assert "A percent-off coupon is between 0 and 100 (%)." in _errors(refused)["value"]
    item.refresh_from_db()
    assert (item.kind, item.value) == ("amount_coupon", 25)


def test_a_refusal_at_save_time_is_shown_on_the_form_and_nothing_is_written(tenant, program, monkeypatch):
    def refuse(**_fields):
        raise ValidationFailed(fields={"name": ["This program already has one with this name."]})

    monkeypatch.setattr("rewards.services.catalog_item_create", refuse)
    response = tenant.admin.post(f"{CATALOG}add/", catalog_item_form(program))
    assert response.status_code == 200
    assert _errors(response)["name"] == ["This program already has one with this name."]
    assert not CatalogItem.objects.for_merchant(tenant.merchant).exists()


def test_a_yen_voucher_is_in_whole_yen_on_the_form_and_in_the_service(tenant):
    yen = ProgramFactory(merchant=tenant.merchant, currency="JPY")
    response = tenant.admin.post(f"{CATALOG}add/", catalog_item_form(yen, value="99.50"))
    assert "JPY has 0 decimal places." in _errors(response)["value"]
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_create(merchant=tenant.merchant, program=yen, name="Voucher", points=5, value=Decimal("99.5"))
    assert refused.value.fields == {"value": ["JPY has 0 decimal places."]}
    assert not CatalogItem.objects.for_merchant(tenant.merchant).exists()


def test_the_service_refuses_an_invalid_item_field_by_field_and_writes_nothing(tenant, program):
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_create(
            merchant=tenant.merchant, program=program, name="Bad", points=0, kind="pool_coupon", value=0,
            coupon_valid_days=0,
        )  # fmt: skip
    fields = refused.value.fields
    assert fields["pool"] == ["Choose the coupon pool the codes come from."]
    assert fields["coupon_valid_days"] == ["A coupon is valid for at least 1 day; leave it empty for no expiry."]
    assert "points" in fields
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_create(merchant=tenant.merchant, program=program, name="Mug", points=5, kind="free_product")
    assert refused.value.fields == {"description": ["Describe the product or experience: the customer sees this."]}
    assert not CatalogItem.objects.for_merchant(tenant.merchant).exists()


def test_the_service_refuses_another_merchants_program_or_pool(tenant, other_tenant, program):
    theirs = ProgramFactory(merchant=other_tenant.merchant)
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_create(merchant=tenant.merchant, program=theirs, name="x", points=5, value=5)
    assert list(refused.value.fields) == ["program"]
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_validate(
            merchant=tenant.merchant, values={"program": program, "kind": "pool_coupon", "pool": coupon_pool(theirs)}
        )
    assert list(refused.value.fields) == ["pool"]


def test_updating_an_item_checks_it_again_and_a_taken_name_is_a_name_error(tenant, program):
    first = catalog_item_create(merchant=tenant.merchant, program=program, name="First", points=5, value=5)
    second = catalog_item_create(merchant=tenant.merchant, program=program, name="Second", points=5, value=5)
    with pytest.raises(ValidationFailed) as refused:
        catalog_item_update(item=second, name=first.name)
    assert refused.value.fields == {"name": ["This program already has one with this name."]}
    second.refresh_from_db()
    with pytest.raises(ValidationFailed):
        catalog_item_update(item=second, value=Decimal("-1"))
    second.refresh_from_db()
    catalog_item_update(item=second, points=750)
    second.refresh_from_db()
    assert (second.name, second.points, second.value) == ("Second", 750, 5)


def test_the_service_takes_only_catalog_item_fields(tenant, program):
    with pytest.raises(TypeError, match="merchant_id"):
        catalog_item_create(merchant=tenant.merchant, program=program, name="x", points=5, merchant_id=1)
