"""Marketing tools through gunicorn, a Celery worker and beat: a merchant connects Klaviyo with createconnection, a
customer joins through the shop API with marketing consent, and the worker sends the fake Klaviyo (a real local HTTP
server) the profile with its referral properties and the "Referral Joined" event, after Klaviyo's first answer was
429 with Retry-After. A customer without consent is never sent."""

from __future__ import annotations

import json

import pytest

from integrations.providers.klaviyo import REVISION
from tests.system.stack import wait_for

pytestmark = pytest.mark.slow


def test_a_participant_joining_with_consent_reaches_klaviyo_through_the_worker_after_a_rate_limit(stacks, httpserver):
    stack = stacks("procfile", name="marketing")
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    httpserver.expect_oneshot_request("/api/profile-import", method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_request("/api/profile-import", method="POST").respond_with_json({"data": {}}, status=201)
    httpserver.expect_request("/api/events", method="POST").respond_with_data("", status=202)
    connected = stack.manage(
        "createconnection",
        "--merchant", shop.slug,
        "--provider", "klaviyo",
        "--account", "KL-SYSTEM",
        "--secret", "pk_system",
        "--base-url", httpserver.url_for("/"),
        "--json",
    )  # fmt: skip
    assert json.loads(connected.stdout.strip().splitlines()[-1])["webhook_url"] is None

    quiet = api.post("/api/v1/participants", json={"program": shop.program, "email": "ben@example.com", "name": "Ben"})
    assert quiet.status_code == 201, quiet.text
    anna = api.post(
        "/api/v1/participants",
        json={"program": shop.program, "email": "anna@example.com", "name": "Anna Nowak", "marketing_consent": True},
    )
    assert anna.status_code == 201, anna.text
    anna = anna.json()

    def sent(path: str) -> list:
        return [(request.headers, request.get_json()) for request, _response in httpserver.log if request.path == path]

    wait_for(lambda: sent("/api/events"), timeout=120, what="the worker to send Klaviyo the event")
    imports = sent("/api/profile-import")
    assert len(imports) == 2  # the rate-limited one, then the same profile again
    headers, body = imports[-1]
    assert headers["Authorization"] == "Klaviyo-API-Key pk_system"
    assert headers["revision"] == REVISION
    attributes = body["data"]["attributes"]
    assert (attributes["email"], attributes["first_name"], attributes["last_name"]) == ("anna@example.com", "Anna",
                                                                                         "Nowak")  # fmt: skip
    assert attributes["properties"]["referral_code"] == anna["code"]
    assert attributes["properties"]["referral_link"] == anna["link"]
    [(_headers, event)] = sent("/api/events")
    event = event["data"]["attributes"]
    assert event["metric"]["data"]["attributes"]["name"] == "Referral Joined"
    assert event["unique_id"] == f"participant.created:{anna['id']}"
    everyone = [
        body["data"]["attributes"]["profile"]["data"]["attributes"]["email"] for _h, body in sent("/api/events")
    ]
    everyone += [body["data"]["attributes"]["email"] for _h, body in imports]
    assert "ben@example.com" not in everyone
