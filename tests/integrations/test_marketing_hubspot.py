"""HubSpot against a real local HTTP server: our contact properties are created once (an existing one answers 409),
then participants are upserted by email, many in one batch call, with the private app token."""

from __future__ import annotations

import pytest
from django.conf import settings

from integrations.models import Connection
from integrations.providers.hubspot import PROPERTIES
from programs.services import participant_erase
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db

AUTH = {"Authorization": "Bearer pat-eu1-secret"}


def test_properties_once_then_one_batch_upsert_by_email_for_many_participants(program, httpserver):
    connection = marketing_connection(program.merchant, "hubspot", httpserver, account="4711", secret="pat-eu1-secret")
    for name, (label, kind, field_type) in PROPERTIES.items():
        request = httpserver.expect_ordered_request(
            "/crm/v3/properties/contacts",
            method="POST",
            headers=AUTH,
            json={"name": name, "label": label, "type": kind, "fieldType": field_type,
                  "groupName": "contactinformation"},
        )  # fmt: skip
        if name == "referral_code":
            request.respond_with_json({"message": "Property already exists"}, status=409)
        else:
            request.respond_with_json({"name": name}, status=201)
    ewa, ewa_code = joins(program, email="ewa@example.com", name="Ewa Nowak")
    jan, jan_code = joins(program, email="jan@example.com", name="Jan")

    def contact(participant, code, first, last=None):
        properties = {
            "referral_code": code.code,
            "referral_link": f"{settings.SITE_URL}/r/{code.code}",
            "referral_portal_link": f"{settings.SITE_URL}/pl/p/{program.merchant.slug}/friends/",
            "referral_status": "active",
            "referral_count": "0",
            "referral_successful_count": "0",
            "referral_rewards_earned": "0",
            "referral_next_reward": "",
            "firstname": first,
        }
        if last:
            properties["lastname"] = last
        return {"idProperty": "email", "id": participant.email, "properties": properties}

    httpserver.expect_ordered_request(
        "/crm/v3/objects/contacts/batch/upsert",
        method="POST",
        headers=AUTH,
        json={"inputs": [contact(ewa, ewa_code, "Ewa", "Nowak"), contact(jan, jan_code, "Jan")]},
    ).respond_with_json({"status": "COMPLETE", "results": []})

    sync_all(connection)

    httpserver.check_assertions()
    assert {s.status for s in syncs(connection)} == {"sent"}
    assert Connection.objects.for_merchant(program.merchant).get(pk=connection.pk).setup_done_at is not None

    # Later syncs create no property again.
    httpserver.expect_ordered_request("/crm/v3/objects/contacts/batch/upsert", method="POST").respond_with_json({})
    joins(program, email="ola@example.com", name="Ola")
    sync_all(connection)
    httpserver.check_assertions()


def test_erasure_is_a_gdpr_delete_by_email(program, httpserver):
    connection = marketing_connection(program.merchant, "hubspot", httpserver, secret="pat-eu1-secret")
    httpserver.expect_request("/crm/v3/properties/contacts", method="POST").respond_with_json({}, status=201)
    httpserver.expect_request("/crm/v3/objects/contacts/batch/upsert", method="POST").respond_with_json({})
    participant, _code = joins(program, email="erase-me@example.com")
    sync_all(connection)

    httpserver.expect_request(
        "/crm/v3/objects/contacts/gdpr-delete",
        method="POST",
        headers=AUTH,
        json={"objectId": "erase-me@example.com", "idProperty": "email"},
    ).respond_with_data("", status=204)
    participant_erase(participant=participant)
    sync_all(connection)

    assert syncs(connection, kind="erase")[0].status == "sent"
    assert httpserver.log[-1][0].path == "/crm/v3/objects/contacts/gdpr-delete"
