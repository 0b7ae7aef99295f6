"""A domain rule that says no (an ApplicationError from a service) is never a 500 anywhere in the admin: the admin
base shows it on the form when saving (nothing saved, the form as typed), as a message when deleting or running an
action. The refusals are injected into the services the pages call, standing for a rule the form could not check
first (a race with another request, a limit reached meanwhile)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from referral_saas.errors import Conflict, Unprocessable

pytestmark = pytest.mark.django_db


def _refuse(message: str, error=Conflict, **kwargs):
    def refused(**_kwargs):
        raise error(message, **kwargs)

    return refused


def _messages(client, response) -> list[str]:
    return [str(m) for m in client.get(response["Location"]).context["messages"]]


def test_a_refused_save_shows_the_form_again_with_the_error_and_saves_nothing(tenant, referrer, monkeypatch):
    import programs.services

    anna, _code = referrer
    monkeypatch.setattr(
        programs.services,
        "participant_set_status",
        _refuse("Blocked elsewhere meanwhile.", fields={"status": ["Blocked elsewhere meanwhile."]}),
    )
    url = reverse("admin:programs_participant_change", args=[anna.pk])
    data = {"name": "Anna Renamed", "email": anna.email, "external_id": anna.external_id, "language": anna.language,
            "status": "blocked"}  # fmt: skip
    response = tenant.admin.post(url, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["status"] == ["Blocked elsewhere meanwhile."]  # next to the field the service named
    assert form["name"].value() == "Anna Renamed"  # as typed
    anna.refresh_from_db()
    assert (anna.name, anna.status) == ("Anna Kowalska", "active")  # the name saved before the refusal is undone


def test_a_refusal_naming_no_field_of_the_form_is_shown_above_it(tenant, referrer, monkeypatch):
    import tracking.services

    _anna, code = referrer
    monkeypatch.setattr(tracking.services, "code_set_status", _refuse("Codes are frozen this week."))
    url = reverse("admin:tracking_referralcode_change", args=[code.pk])
    response = tenant.admin.post(url, {"code": code.code, "status": "disabled"})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == ["Codes are frozen this week."]
    code.refresh_from_db()
    assert code.status == "active"


def test_a_refused_delete_is_a_message_and_deletes_nothing(tenant, monkeypatch):
    import referral_saas.webhooks.services
    from referral_saas.webhooks.models import WebhookEndpoint
    from tests.webhooks.conftest import make_endpoint

    endpoint, _secret = make_endpoint(tenant.merchant, "https://hooks.shop.example/keep")
    monkeypatch.setattr(referral_saas.webhooks.services, "endpoint_delete", _refuse("Deliveries are running."))
    response = tenant.admin.post(reverse("admin:webhooks_webhookendpoint_delete", args=[endpoint.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert "Deliveries are running." in _messages(tenant.admin, response)
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=endpoint.pk).exists()


def test_an_action_a_service_refuses_is_a_message(tenant, program, monkeypatch):
    import programs.services
    from programs.models import Program

    monkeypatch.setattr(programs.services, "program_duplicate", _refuse("Too many programs.", error=Unprocessable))
    url = reverse("admin:programs_program_changelist")
    response = tenant.admin.post(url, {"action": "duplicate", "index": "0", "_selected_action": [program.pk]})
    assert response.status_code == 302
    assert "Too many programs." in _messages(tenant.admin, response)
    assert Program.objects.for_merchant(tenant.merchant).count() == 1
