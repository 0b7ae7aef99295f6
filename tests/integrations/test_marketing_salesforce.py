"""Salesforce through simple-salesforce against a real local HTTP server: a consenting participant is upserted as a
Contact by our external-id field; erasure deletes that Contact; the org's API limit is tried again later."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.models import OutboundSync
from programs.services import participant_erase
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db

AUTH = {"Authorization": "Bearer 00Dxx!token", "Content-Type": "application/json"}
CONTACT = "/services/data/v62.0/sobjects/Contact/Referral_Participant_Id__c"


def connect(program, httpserver):
    return marketing_connection(
        program.merchant, "salesforce", httpserver, account="https://acme.my.salesforce.com", secret="00Dxx!token"
    )


def test_a_consenting_participant_is_upserted_as_a_contact_by_the_external_id(program, httpserver):
    connection = connect(program, httpserver)
    participant, code = joins(program, email="ewa@example.com", name="Ewa Nowak")
    httpserver.expect_ordered_request(
        f"{CONTACT}/{participant.pk}",
        method="PATCH",
        headers=AUTH,
        json={
            "Email": "ewa@example.com",
            "FirstName": "Ewa",
            "LastName": "Nowak",
            "Referral_Code__c": code.code,
            "Referral_Link__c": f"{settings.SITE_URL}/r/{code.code}",
            "Referral_Portal_Link__c": f"{settings.SITE_URL}/pl/p/{program.merchant.slug}/friends/",
            "Referral_Status__c": "active",
            "Referrals__c": 0,
            "Successful_Referrals__c": 0,
            "Referral_Rewards_Earned__c": 0,
            "Next_Referral_Reward__c": "",
        },
    ).respond_with_json({"id": "003xx", "success": True, "created": True}, status=201)

    sync_all(connection)

    httpserver.check_assertions()
    assert [s.status for s in syncs(connection)] == ["sent"]


def test_erasure_deletes_the_contact_and_an_api_limit_is_tried_again_later(program, httpserver):
    connection = connect(program, httpserver)
    participant, _code = joins(program, email="gone@example.com", name="Jan")
    httpserver.expect_request(f"{CONTACT}/{participant.pk}", method="PATCH").respond_with_json({}, status=201)
    sync_all(connection)

    httpserver.expect_oneshot_request(f"{CONTACT}/{participant.pk}", method="DELETE").respond_with_json(
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}], status=403
    )
    participant_erase(participant=participant)
    sync_all(connection)
    erase = syncs(connection, kind="erase")[0]
    assert erase.status == "pending"
    assert "REQUEST_LIMIT_EXCEEDED" in erase.last_error

    httpserver.expect_request(f"{CONTACT}/{participant.pk}", method="DELETE", headers=AUTH).respond_with_data(
        "", status=204
    )
    OutboundSync.objects.for_merchant(program.merchant).filter(pk=erase.pk).update(next_attempt_at=timezone.now())
    sync_all(connection)

    assert syncs(connection, kind="erase")[0].status == "sent"
    assert [r.method for r, _resp in httpserver.log] == ["PATCH", "DELETE", "DELETE"]


def test_a_refused_contact_fails_and_marks_the_connection(program, httpserver):
    connection = connect(program, httpserver)
    participant, _code = joins(program, email="bad@example.com")
    httpserver.expect_request(f"{CONTACT}/{participant.pk}", method="PATCH").respond_with_json(
        [{"errorCode": "INVALID_FIELD", "message": "No such column 'Referral_Code__c' on sobject of type Contact"}],
        status=400,
    )

    sync_all(connection)

    [row] = syncs(connection)
    assert row.status == "failed"
    assert "INVALID_FIELD" in row.last_error
    connection.refresh_from_db()
    assert "INVALID_FIELD" in connection.last_error
