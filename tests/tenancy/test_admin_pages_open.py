"""Every page of every model of both admin sites opens for a user allowed to use it: the list, the add form and the
change form and history of a row. A page that only a refusal or a mistake reaches (an action, a bad filter) is
walked by the other test_admin_bad_* files; this one is the plain click that found /ops/tenancy/user/add/ a 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from referral_saas.tenancy.admin_site import merchant_admin, ops_admin
from referral_saas.tenancy.models import User
from tests.conftest import staff_client
from tests.factories import FACTORY_FOR_MODEL, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-Passphrase-9"


def _cases(site):
    return [pytest.param(model, id=model._meta.label) for model in sorted(site._registry, key=lambda m: m._meta.label)]


def _row(tenant, model):
    if model is User:
        return tenant.owner
    factory = FACTORY_FOR_MODEL.get(model)
    return factory(tenant.merchant) if factory is not None else None


def _walk(client, site, model, row) -> dict[str, int]:
    """{page: status} of each page that did not open as it should."""
    admin = site._registry[model]
    name = f"{site.name}:{model._meta.app_label}_{model._meta.model_name}"
    request = client.get(reverse(f"{name}_changelist")).wsgi_request
    expected = {reverse(f"{name}_changelist"): 200}
    if "add" in admin.get_model_perms(request) and admin.has_add_permission(request):
        expected[reverse(f"{name}_add")] = 200
    if row is not None:
        expected[reverse(f"{name}_change", args=[row.pk])] = 200
        expected[reverse(f"{name}_history", args=[row.pk])] = 200
    client.raise_request_exception = False
    return {url: status for url, want in expected.items() if (status := client.get(url).status_code) != want}


@pytest.mark.parametrize("model", _cases(merchant_admin))
def test_every_merchant_admin_page_opens_for_the_owner(tenant, model):
    assert _walk(tenant.admin, merchant_admin, model, _row(tenant, model)) == {}


@pytest.mark.parametrize("model", _cases(ops_admin))
def test_every_ops_page_opens_for_an_operator(tenant, model):
    operator = staff_client(UserFactory(is_superuser=True, is_staff=True))
    assert _walk(operator, ops_admin, model, _row(tenant, model)) == {}


def test_an_operator_adds_and_changes_a_user_in_ops(tenant):
    operator = staff_client(UserFactory(is_superuser=True, is_staff=True))
    added = operator.post(
        "/ops/tenancy/user/add/",
        {"email": "new.operator@platform.example", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert added.status_code == 302, added.content
    user = User.objects.get(email="new.operator@platform.example")
    url = f"/ops/tenancy/user/{user.pk}/change/"
    form = operator.get(url)
    assert form.status_code == 200
    changed = operator.post(
        url,
        {"email": user.email, "first_name": "Ola", "last_name": "Nowak", "is_active": "on", "is_staff": "on"},
    )
    assert changed.status_code == 302, changed.content
    user.refresh_from_db()
    assert (user.first_name, user.is_staff, user.is_superuser) == ("Ola", True, False)
