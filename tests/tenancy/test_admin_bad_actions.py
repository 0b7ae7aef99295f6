"""Every action of every list of both admin sites, posted with a selection that is not a list of row ids (a word, a
NUL, a decimal, a number past the id column's range, or a real id mixed with one of these): refused with a message,
nothing done, never a 500 (Django filters `pk__in=<selection>` and the id field raises ValueError)."""

from __future__ import annotations

import pytest
from django.db import models
from django.urls import reverse

from referral_saas.tenancy.admin_site import merchant_admin, ops_admin
from tests.conftest import staff_client
from tests.factories import FACTORY_FOR_MODEL, UserFactory

pytestmark = pytest.mark.django_db

REFUSED = "The selection is not a list of rows of this page; nothing was done."
BAD_SELECTIONS = [["abc"], ["\x00"], ["%00"], ["1.5"], [""], ["99999999999999999999"], ["-99999999999999999999"]]


def _cases(site):
    return [pytest.param(model, id=model._meta.label) for model in sorted(site._registry, key=lambda m: m._meta.label)]


def _stored(row) -> dict:
    model = type(row)
    manager = getattr(model, "all_merchants", model._default_manager)
    return manager.filter(pk=row.pk).values().first()


def _walk_actions(client, site, model, row) -> None:
    url = reverse(f"{site.name}:{model._meta.app_label}_{model._meta.model_name}_changelist")
    page = client.get(url)
    assert page.status_code == 200
    action_form = page.context.get("action_form")
    actions = [name for name, _label in action_form.fields["action"].choices if name] if action_form else []
    before = _stored(row) if row is not None else None
    client.raise_request_exception = False
    failures = []
    selections = BAD_SELECTIONS + ([[str(row.pk), "abc"]] if row is not None else [])
    numeric_ids = isinstance(model._meta.pk, models.IntegerField)
    for action in actions:
        for selection in selections:
            response = client.post(url, {"action": action, "index": "0", "_selected_action": selection})
            if not numeric_ids and not any("\x00" in value for value in selection):
                # a text key ("abc" is a code): the action runs on no row or on the one row, as Django does
                if response.status_code >= 500:
                    failures.append((action, selection, response.status_code))
                continue
            if response.status_code != 302:
                failures.append((action, selection, response.status_code))
                continue
            shown = [str(m) for m in client.get(response["Location"]).context["messages"]]
            if REFUSED not in shown:
                failures.append((action, selection, shown))
    assert failures == []
    if row is not None:
        assert _stored(row) == before  # nothing was changed or deleted


@pytest.mark.parametrize("model", _cases(merchant_admin))
def test_an_action_with_a_selection_that_is_no_row_id_is_refused_on_every_merchant_list(tenant, model):
    factory = FACTORY_FOR_MODEL.get(model)
    row = factory(tenant.merchant) if factory is not None else None
    _walk_actions(tenant.admin, merchant_admin, model, row)


@pytest.mark.parametrize("model", _cases(ops_admin))
def test_an_action_with_a_selection_that_is_no_row_id_is_refused_on_every_ops_list(tenant, model):
    factory = FACTORY_FOR_MODEL.get(model)
    row = factory(tenant.merchant) if factory is not None else None
    operator = UserFactory(is_superuser=True, is_staff=True)
    _walk_actions(staff_client(operator), ops_admin, model, row)


def test_the_walk_runs_actions_of_the_lists_that_have_them(tenant):
    page = tenant.admin.get(reverse("admin:programs_program_changelist"))
    names = {name for name, _label in page.context["action_form"].fields["action"].choices}
    assert {"activate", "pause", "end", "duplicate", "delete_selected"} <= names


def test_a_real_selection_still_runs_the_action(tenant):
    from programs.models import Program
    from tests.factories import ProgramFactory

    program = ProgramFactory(merchant=tenant.merchant, status=Program.Status.ACTIVE)
    url = reverse("admin:programs_program_changelist")
    response = tenant.admin.post(url, {"action": "pause", "index": "0", "_selected_action": [str(program.pk)]})
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.status == Program.Status.PAUSED
