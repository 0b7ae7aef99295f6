"""Every tenant-owned table carries the merchant; unscoped queries fail closed."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from referral_saas.tenancy.managers import TenantScopeError
from referral_saas.tenancy.models import ApiKey, Membership, Merchant, TenantModel
from tests.factories import MembershipFactory, MerchantFactory

OUR_APPS = {"tenancy", "programs", "tracking", "rewards", "fraud", "analytics", "webhooks", "integrations"}
# Tables that are not owned by one tenant, with the reason.
GLOBAL_MODELS = {
    "tenancy.Merchant": "the tenant itself",
    "tenancy.User": "a person can work for several merchants (through Membership)",
    "tenancy.ShopSettings": "a proxy of Merchant for the merchant admin",
    "tracking.CodeRoute": "routes /r/<code> (a URL that names no merchant) to its merchant; a reference table",
    "tracking.ClickPurge": "a month of raw clicks retention dropped, for all merchants (the rollups read it)",
}


def _our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def _label(model) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def _constraint_fields(constraint) -> list[str]:
    if constraint.fields:
        return list(constraint.fields)
    return [name for expression in constraint.expressions for name in _referenced_names(expression)]


def _referenced_names(expression) -> list[str]:
    """Field names an index/constraint expression refers to, in order (F("merchant"), Lower("email"), ...)."""
    if isinstance(expression, models.F):
        return [expression.name]
    names = []
    for source in getattr(expression, "get_source_expressions", list)():
        names.extend(_referenced_names(source))
    return names


def test_every_model_of_ours_is_tenant_owned_or_declared_global():
    problems = []
    for model in _our_models():
        label = _label(model)
        if label in GLOBAL_MODELS:
            continue
        if not issubclass(model, TenantModel):
            problems.append(f"{label} does not inherit TenantModel")
            continue
        field = model._meta.get_field("merchant")
        if not (field.is_relation and field.related_model is Merchant):
            problems.append(f"{label}.merchant is not a key to Merchant")
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint):
                fields = _constraint_fields(constraint)
                if not fields or fields[0] not in ("merchant", "merchant_id"):
                    problems.append(f"{label}: unique constraint {constraint.name} does not start with merchant")
        for together in model._meta.unique_together:
            if together[0] != "merchant":
                problems.append(f"{label}: unique_together {together} does not start with merchant")
        for f in model._meta.get_fields():
            if getattr(f, "unique", False) and not getattr(f, "primary_key", False) and f.concrete:
                problems.append(f"{label}.{f.name} is unique across merchants")
        leading = [
            _constraint_fields(c)[:1] for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)
        ] + [list(index.fields[:1]) for index in model._meta.indexes]
        if ["merchant"] not in leading:
            problems.append(f"{label} has no index or unique constraint that starts with merchant")
        if model._default_manager.name != "all_merchants":
            problems.append(f"{label}: its default manager is {model._default_manager.name}, not all_merchants")
    assert problems == []


def test_the_walk_would_catch_a_model_whose_unique_constraint_forgets_the_merchant():
    class Leaky(TenantModel):
        code = models.CharField(max_length=10)

        class Meta:
            app_label = "tenancy"
            constraints = [models.UniqueConstraint(fields=["code"], name="leaky_code")]

    assert _constraint_fields(Leaky._meta.constraints[0])[0] != "merchant"


def test_unscoped_query_raises(db):
    with pytest.raises(TenantScopeError, match="for_merchant"):
        list(ApiKey.objects.all())
    with pytest.raises(TenantScopeError):
        ApiKey.objects.filter(name="x").exists()
    with pytest.raises(TenantScopeError):
        ApiKey.objects.create(name="x")


def test_for_merchant_needs_a_saved_merchant(db):
    with pytest.raises(TenantScopeError):
        Membership.objects.for_merchant(None)
    with pytest.raises(TenantScopeError):
        Membership.objects.for_merchant(Merchant(name="unsaved"))


def test_scoped_query_sees_only_its_merchant(db):
    a, b = MerchantFactory(), MerchantFactory()
    mine = MembershipFactory(merchant=a)
    MembershipFactory(merchant=b)
    assert list(Membership.objects.for_merchant(a)) == [mine]


def test_create_inside_a_scope_fills_in_the_merchant_and_refuses_another(db):
    a, b = MerchantFactory(), MerchantFactory()
    user = MembershipFactory(merchant=a).user
    other = MembershipFactory(merchant=b).user
    created = Membership.objects.for_merchant(b).create(user=user)
    assert created.merchant == b
    with pytest.raises(TenantScopeError):
        Membership.objects.for_merchant(a).create(user=other, merchant=b)


def test_cross_tenant_access_says_so_by_name(db):
    MembershipFactory()
    MembershipFactory()
    assert Membership.all_merchants.count() == 2
