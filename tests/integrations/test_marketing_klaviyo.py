"""Klaviyo against a real local HTTP server: a participant who joins with marketing consent becomes a profile with
our referral properties (profile-import with the `revision` header) and gets a "Referral Joined" event; an issued
reward is a "Reward Issued" event with its value and coupon code; 429 with Retry-After is tried again later."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from werkzeug import Response

from integrations.models import OutboundSync
from integrations.providers.klaviyo import REVISION
from programs.models import Participant
from tests.integrations.conftest import released
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db

HEADERS = {
    "Authorization": "Klaviyo-API-Key pk_secret",
    "revision": REVISION,
    "Content-Type": "application/vnd.api+json",
    "Accept": "application/vnd.api+json",
}


def new_referrer_properties(program, code) -> dict:
    """The referral properties of a referrer who just joined (nobody referred yet)."""
    return {
        "referral_program": "friends",
        "referral_code": code.code,
        "referral_link": f"{settings.SITE_URL}/r/{code.code}",
        "referral_portal_link": f"{settings.SITE_URL}/pl/p/{program.merchant.slug}/friends/",
        "referral_status": "active",
        "referrals": 0,
        "successful_referrals": 0,
        "rewards_earned": 0,
        "referrals_to_next_reward": None,
        "next_reward": "",
    }


def test_a_consenting_participant_becomes_a_klaviyo_profile_with_referral_properties_and_a_joined_event(
    program, httpserver
):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    participant, code = joins(program, email="Ewa.Nowak@Example.com", name="Ewa Nowak", external_id="c-7")
    link = f"{settings.SITE_URL}/r/{code.code}"
    httpserver.expect_ordered_request(
        "/api/profile-import",
        method="POST",
        headers=HEADERS,
        json={
            "data": {
                "type": "profile",
                "attributes": {
                    "email": participant.email,
                    "external_id": "c-7",
                    "first_name": "Ewa",
                    "last_name": "Nowak",
                    "properties": new_referrer_properties(program, code),
                },
            }
        },
    ).respond_with_json({"data": {"id": "01HPROFILE"}}, status=201)
    httpserver.expect_ordered_request(
        "/api/events",
        method="POST",
        headers=HEADERS,
        json={
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"program": "friends", "code": code.code, "link": link},
                    "metric": {"data": {"type": "metric", "attributes": {"name": "Referral Joined"}}},
                    "profile": {
                        "data": {"type": "profile", "attributes": {"email": participant.email, "external_id": "c-7"}}
                    },
                    "unique_id": f"participant.created:{participant.pk}",
                    "time": participant.created_at.isoformat().replace("+00:00", "Z"),
                },
            }
        },
    ).respond_with_data("", status=202)

    sync_all(connection)

    httpserver.check_assertions()
    assert {(s.kind, s.status) for s in syncs(connection)} == {("profile", "sent"), ("event", "sent")}
    assert syncs(connection, kind="profile")[0].request == "POST /api/profile-import x1"


def test_an_issued_reward_is_a_reward_issued_event_with_its_value_and_coupon_code(program, coupon_reward, httpserver):
    Participant.objects.for_merchant(program.merchant).filter(pk=coupon_reward.participant_id).update(
        marketing_consent=True
    )
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    reward = released(coupon_reward)
    assert reward.status == "issued"
    httpserver.expect_request("/api/profile-import", method="POST").respond_with_json({}, status=201)
    httpserver.expect_request("/api/events", method="POST", headers=HEADERS).respond_with_data("", status=202)

    sync_all(connection)

    events = [r.get_json()["data"]["attributes"] for r, _resp in httpserver.log if r.path == "/api/events"]
    assert [e["metric"]["data"]["attributes"]["name"] for e in events] == ["Reward Issued"]
    issued = events[0]
    assert issued["value"] == 20.0
    assert issued["value_currency"] == reward.currency
    assert issued["unique_id"] == f"reward.issued:{reward.pk}"
    assert issued["properties"]["coupon_code"] == reward.coupon_code != ""
    assert issued["properties"]["reward_value"] == "20.00"
    assert issued["profile"]["data"]["attributes"]["email"] == "anna.kowalska@gmail.com"
    profile = [r.get_json() for r, _resp in httpserver.log if r.path == "/api/profile-import"][-1]
    assert profile["data"]["attributes"]["properties"]["rewards_earned"] == 1


def test_429_with_retry_after_is_tried_again_after_the_wait_the_tool_asked_for(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    joins(program, email="busy@example.com")
    httpserver.expect_oneshot_request("/api/profile-import", method="POST").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "30"})
    )
    before = timezone.now()

    sync_all(connection)

    profile, event = syncs(connection, kind="profile")[0], syncs(connection, kind="event")[0]
    assert profile.status == event.status == OutboundSync.Status.PENDING  # the whole batch waits: the tool is busy
    assert profile.attempts == 1
    assert "429" in profile.last_error
    assert profile.next_attempt_at >= before + timedelta(seconds=30)
    assert len(httpserver.log) == 1  # nothing more was sent meanwhile

    # The wait is over: the sweeper's task sends them.
    OutboundSync.objects.for_merchant(program.merchant).update(next_attempt_at=timezone.now())
    httpserver.expect_request("/api/profile-import", method="POST").respond_with_json({}, status=201)
    httpserver.expect_request("/api/events", method="POST").respond_with_data("", status=202)
    sync_all(connection)

    assert {s.status for s in syncs(connection)} == {OutboundSync.Status.SENT}
    assert syncs(connection, kind="profile")[0].attempts == 2
    assert [r.path for r, _resp in httpserver.log] == ["/api/profile-import", "/api/profile-import", "/api/events"]


def test_several_profiles_go_as_one_bulk_import_job_and_their_events_as_one_bulk_create_job(program, httpserver):
    connection = marketing_connection(program.merchant, "klaviyo", httpserver)
    first, first_code = joins(program, email="ewa@example.com", name="Ewa Nowak", external_id="c-1")
    second, second_code = joins(program, email="jan@example.com", name="Jan")

    def resource(participant, code, **names) -> dict:
        return {
            "type": "profile",
            "attributes": {
                "email": participant.email,
                **({"external_id": participant.external_id} if participant.external_id else {}),
                "properties": new_referrer_properties(program, code),
                **names,
            },
        }

    httpserver.expect_ordered_request(
        "/api/profile-bulk-import-jobs",
        method="POST",
        headers=HEADERS,
        json={
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [
                            resource(first, first_code, first_name="Ewa", last_name="Nowak"),
                            resource(second, second_code, first_name="Jan"),
                        ]
                    }
                },
            }
        },
    ).respond_with_json({"data": {"type": "profile-bulk-import-job", "id": "JOB-1"}}, status=202)

    def joined(participant, code) -> dict:  # one "Referral Joined" event with its profile, as the bulk job takes it
        identity = {
            "email": participant.email,
            **({"external_id": participant.external_id} if participant.external_id else {}),
        }
        link = f"{settings.SITE_URL}/r/{code.code}"
        return {
            "type": "event-bulk-create",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": identity}},
                "events": {"data": [{"type": "event", "attributes": {
                    "properties": {"program": "friends", "code": code.code, "link": link},
                    "metric": {"data": {"type": "metric", "attributes": {"name": "Referral Joined"}}},
                    "unique_id": f"participant.created:{participant.pk}",
                    "time": participant.created_at.isoformat().replace("+00:00", "Z"),
                }}]},
            },
        }  # fmt: skip

    httpserver.expect_ordered_request(
        "/api/event-bulk-create-jobs",
        method="POST",
        headers=HEADERS,
        json={
            "data": {
                "type": "event-bulk-create-job",
                "attributes": {
                    "events-bulk-create": {"data": [joined(first, first_code), joined(second, second_code)]}
                },
            }
        },
    ).respond_with_data("", status=202)

    sync_all(connection)

    httpserver.check_assertions()
    assert [r.path for r, _resp in httpserver.log] == ["/api/profile-bulk-import-jobs", "/api/event-bulk-create-jobs"]
    assert {s.request for s in syncs(connection, kind="event")} == {"POST /api/event-bulk-create-jobs x2"}
    profiles = syncs(connection, kind="profile")
    assert {s.status for s in syncs(connection)} == {"sent"}
    assert {s.request for s in profiles} == {"POST /api/profile-bulk-import-jobs x2 (job JOB-1)"}
