"""The marketing sync framework, with Klaviyo as the tool at the other end (a real local HTTP server): consent,
erasure, errors, idempotency, rollback, tenant isolation, the commands and the admin."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from integrations.models import Connection, OutboundSync
from integrations.services import marketing_events_hear
from programs.models import Participant
from programs.services import participant_erase
from tests.factories import ProgramFactory
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db


def ok(httpserver):
    httpserver.expect_request("/api/profile-import", method="POST").respond_with_json({}, status=201)
    httpserver.expect_request("/api/events", method="POST").respond_with_data("", status=202)
    httpserver.expect_request("/api/data-privacy-deletion-jobs", method="POST").respond_with_data("", status=202)


def test_a_participant_without_marketing_consent_is_never_sent(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)

    joins(program, email="no-consent@example.com", consent=False)
    sync_all(connection)

    assert syncs(connection) == []
    assert httpserver.log == []


def test_consent_withdrawn_before_sending_sends_nothing(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    participant, _code = joins(program, email="changed-mind@example.com")
    Participant.objects.for_merchant(program.merchant).filter(pk=participant.pk).update(marketing_consent=False)

    sync_all(connection)

    assert {(s.status, s.last_error) for s in syncs(connection)} == {("skipped", "no marketing consent")}
    assert httpserver.log == []


def test_erasure_deletes_the_person_in_the_tool_that_received_them_and_forgets_the_email(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    participant, _code = joins(program, email="Forget.Me@Example.com")
    sync_all(connection)
    httpserver.clear_log()

    participant_erase(participant=participant)
    sync_all(connection)

    assert [r.path for r, _resp in httpserver.log] == ["/api/data-privacy-deletion-jobs"]
    assert httpserver.log[0][0].get_json() == {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": "Forget.Me@Example.com"}}}},
        }
    }
    erase = syncs(connection, kind="erase")[0]
    assert (erase.status, erase.payload) == ("sent", {})
    # Nothing kept for the tool names them any more.
    assert all("Forget" not in json.dumps(s.payload) for s in syncs(connection))


def test_erasure_of_someone_never_sent_calls_no_tool(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    participant, _code = joins(program, email="never-sent@example.com", consent=False)

    participant_erase(participant=participant)
    sync_all(connection)

    assert syncs(connection) == []
    assert httpserver.log == []


def test_erasure_before_the_first_send_drops_the_pending_rows(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    participant, _code = joins(program, email="quick-exit@example.com")

    participant_erase(participant=participant)
    sync_all(connection)

    assert httpserver.log == []
    assert {(s.kind, s.status, json.dumps(s.payload)) for s in syncs(connection)} == {
        ("profile", "skipped", "{}"),
        ("event", "skipped", "{}"),
    }


def test_a_refusal_fails_the_row_and_shows_on_the_connection_and_is_not_retried(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    httpserver.expect_request("/api/profile-import").respond_with_json({"errors": [{"detail": "bad key"}]}, status=401)
    httpserver.expect_request("/api/events").respond_with_data("", status=202)
    joins(program, email="refused@example.com")

    sync_all(connection)

    profile = syncs(connection, kind="profile")[0]
    assert (profile.status, profile.next_attempt_at) == ("failed", None)
    assert "401" in profile.last_error
    assert "bad key" in profile.last_error
    assert syncs(connection, kind="event")[0].status == "sent"  # one refusal does not stop the others
    assert "401" in Connection.objects.for_merchant(program.merchant).get(pk=connection.pk).last_error


def test_a_server_error_puts_the_batch_off_with_a_growing_pause(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    httpserver.expect_request("/api/profile-import").respond_with_data("oops", status=503)
    joins(program, email="later@example.com")

    sync_all(connection)
    first = syncs(connection, kind="profile")[0]
    OutboundSync.objects.for_merchant(program.merchant).update(next_attempt_at=timezone.now())
    sync_all(connection)
    second = syncs(connection, kind="profile")[0]

    assert (first.status, second.status) == ("pending", "pending")
    assert second.attempts == 2
    assert (second.next_attempt_at - timezone.now()).total_seconds() > 100  # 2 minutes after the 2nd failure
    assert len(httpserver.log) == 2  # the event after the failing profile was not tried meanwhile


def test_the_same_domain_event_told_twice_is_synced_once(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    participant, code = joins(program, email="twice@example.com")
    data = {"id": participant.pk, "code": code.code, "link": "x", "program": "friends", "created_at": None}

    with transaction.atomic():
        marketing_events_hear(program.merchant, [(True, "participant.created", data)])

    assert len(syncs(connection, kind="profile")) == len(syncs(connection, kind="event")) == 1
    sync_all(connection)
    assert len([r for r, _resp in httpserver.log if r.path == "/api/events"]) == 1


def test_a_rolled_back_join_leaves_nothing_to_sync(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)

    def join_then_fail():
        with transaction.atomic():
            joins(program, email="rolled-back@example.com")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        join_then_fail()

    assert syncs(connection) == []


def test_another_merchants_participants_never_reach_this_merchants_tool(program, other_tenant, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    other_program = ProgramFactory(merchant=other_tenant.merchant, slug="friends")
    ok(httpserver)

    joins(other_program, email="beta-customer@example.com")
    sync_all(connection)

    assert syncs(connection) == []
    assert httpserver.log == []
    assert not OutboundSync.objects.for_merchant(other_tenant.merchant).exists()


def test_another_merchants_staff_cannot_see_or_replay_the_syncs(program, tenant, other_tenant, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    joins(program, email="private@example.com")
    row = syncs(connection)[0]

    assert other_tenant.admin.get(f"/admin/integrations/outboundsync/{row.pk}/change/").status_code == 404
    assert "private@example.com" not in other_tenant.admin.get("/admin/integrations/outboundsync/").content.decode()
    own = tenant.admin.get(f"/admin/integrations/outboundsync/{row.pk}/change/")
    assert "private@example.com" in own.content.decode()


def test_replaying_a_failed_sync_in_the_admin_sends_it_again(program, tenant, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    httpserver.expect_oneshot_request("/api/profile-import").respond_with_data("bad", status=400)
    ok(httpserver)
    joins(program, email="replay@example.com")
    sync_all(connection)
    failed = syncs(connection, kind="profile")[0]
    assert failed.status == "failed"

    response = tenant.admin.post(
        "/admin/integrations/outboundsync/", {"action": "replay", "_selected_action": [failed.pk]}
    )
    assert response.status_code == 302
    sync_all(connection)

    replayed = syncs(connection, kind="profile")[0]
    assert (replayed.status, replayed.last_error) == ("sent", "")
    assert [r.path for r, _resp in httpserver.log].count("/api/profile-import") == 2


def test_createconnection_connects_a_marketing_tool_with_its_api_key(tenant, httpserver):
    out = StringIO()
    call_command(
        "createconnection",
        "--merchant", tenant.merchant.slug,
        "--provider", "mailchimp",
        "--account", "aud123",
        "--secret", "0123abcd-us21",
        "--base-url", httpserver.url_for("/"),
        "--json",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    connection = Connection.objects.for_merchant(tenant.merchant).get(pk=result["id"])
    assert result == {"id": connection.pk, "provider": "mailchimp", "webhook_url": None}
    assert (connection.account, connection.credentials, connection.webhook_secret) == (
        "aud123",
        {"api_key": "0123abcd-us21"},
        "",
    )


def test_the_backfill_queues_every_consenting_participant_once_per_run(program, httpserver):
    participant, _code = joins(program, email="old-1@example.com")
    joins(program, email="old-2@example.com", consent=False)
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    out = StringIO()

    call_command("syncmarketing", "--merchant", program.merchant.slug, stdout=out)
    sync_all(connection)

    assert "1/1 (100%)" in out.getvalue()
    assert [(s.kind, s.participant_id, s.status) for s in syncs(connection)] == [("profile", participant.pk, "sent")]
    assert [r.get_json()["data"]["attributes"]["email"] for r, _resp in httpserver.log] == ["old-1@example.com"]


def test_a_marketing_tool_has_no_inbound_webhook(client, program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    response = client.post(connection.webhook_path, data=b"{}", content_type="application/json")
    assert response.status_code == 404


def test_a_marketing_connection_takes_no_coupons_and_is_not_reconciled(program, httpserver):
    connection = marketing_connection(program.merchant, "hubspot", httpserver)
    assert not any(connection.syncs(what) for what in ("orders", "refunds", "coupons", "reconcile"))


def test_connecting_a_marketing_tool_in_the_admin_keeps_the_key_as_a_credential_and_shows_no_webhook_url(tenant):
    response = tenant.admin.post(
        "/admin/integrations/connection/add/",
        {"provider": "klaviyo", "account": "KL-ADMIN", "livemode": "on", "secret": "pk_admin", "token": ""},
        follow=True,
    )
    assert response.status_code == 200
    connection = Connection.objects.for_merchant(tenant.merchant).get()
    assert (connection.provider, connection.credentials, connection.webhook_secret) == (
        "klaviyo",
        {"api_key": "pk_admin"},
        "",
    )
    assert "participants with marketing consent are synced" in response.content.decode()
    page = tenant.admin.get(f"/admin/integrations/connection/{connection.pk}/change/").content.decode()
    assert "pk_admin" not in page
    assert connection.webhook_path not in page
    assert "/admin/integrations/outboundsync/?connection__id__exact=" in page


def test_consent_given_after_joining_sends_the_profile_then(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    ok(httpserver)
    joins(program, email="later-yes@example.com", consent=False)
    assert syncs(connection) == []

    joins(program, email="later-yes@example.com", consent=True)  # the shop reports the consent (an upsert)
    sync_all(connection)

    assert [(s.kind, s.event_type, s.status) for s in syncs(connection)] == [
        ("profile", "participant.consent_given", "sent")
    ]
    [request] = [r for r, _resp in httpserver.log]
    assert request.get_json()["data"]["attributes"]["email"] == "later-yes@example.com"


def test_createconnection_says_zapier_needs_no_connection(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="api/v1/hooks"):
        call_command(
            "createconnection", "--merchant", tenant.merchant.slug, "--provider", "zapier", "--account", "z",
            "--secret", "s",
        )  # fmt: skip
