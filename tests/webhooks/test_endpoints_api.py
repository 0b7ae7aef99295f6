"""The shop API for webhook endpoints: the secret once, lists without it, validation, modes and tenants."""

from __future__ import annotations

import base64

import pytest

from referral_saas.webhooks.models import WebhookEndpoint
from referral_saas.webhooks.services import MAX_ENDPOINTS_PER_MODE
from tests.factories import make_api_key
from tests.webhooks.conftest import emit

pytestmark = pytest.mark.django_db

URL = "https://hooks.shop.example/referrals"
PATH = "/api/v1/webhook-endpoints"


def _create(api, **body):
    return api.post(PATH, {"url": URL, **body}, format="json")


def test_creating_an_endpoint_returns_its_secret_once(tenant):
    response = _create(tenant.api, description="Order system", events=["reward.issued", "participant.created"])

    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert body["secret_hint"] == f"whsec_…{secret[-4:]}"
    assert body["url"] == URL
    assert body["description"] == "Order system"
    assert body["events"] == ["participant.created", "reward.issued"]  # catalogue order, each once
    assert (body["enabled"], body["disabled_reason"], body["failing_since"], body["livemode"]) == (True, "", None, True)

    listed = tenant.api.get(PATH).json()
    detail = tenant.api.get(f"{PATH}/{body['id']}").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]
    for shown in (listed["results"][0], detail):
        assert "secret" not in shown
        assert secret not in str(shown)
        assert shown["secret_hint"] == body["secret_hint"]
    endpoint = WebhookEndpoint.objects.for_merchant(tenant.merchant).get(pk=body["id"])
    assert endpoint.secret == secret  # the one that signs


def test_each_endpoint_gets_its_own_secret(tenant):
    assert _create(tenant.api).json()["secret"] != _create(tenant.api).json()["secret"]


def test_no_events_means_every_event(tenant):
    body = _create(tenant.api, events=[]).json()
    assert body["events"] == []
    assert emit(tenant.merchant, "reward.clawed_back") is not None


def test_deleting_an_endpoint_stops_its_webhooks(tenant):
    endpoint_id = _create(tenant.api).json()["id"]
    emit(tenant.merchant)

    response = tenant.api.delete(f"{PATH}/{endpoint_id}")

    assert response.status_code == 200
    assert response.json() == {"id": endpoint_id, "deleted": True}
    assert tenant.api.get(f"{PATH}/{endpoint_id}").status_code == 404
    assert tenant.api.delete(f"{PATH}/{endpoint_id}").status_code == 404
    assert emit(tenant.merchant) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://files.shop.example/in"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://" + "a" * 2000 + ".example/"}, "url"),
        ({"url": URL, "events": ["reward.exploded"]}, "events"),
        ({"url": URL, "events": "reward.issued"}, "events"),
        ({"url": URL, "description": "x" * 201}, "description"),
        ({"url": ["https://a.example"]}, "url"),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(tenant, body, field):
    response = tenant.api.post(PATH, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert not WebhookEndpoint.objects.for_merchant(tenant.merchant).exists()


def test_malformed_json_is_a_400(tenant):
    response = tenant.api.generic("POST", PATH, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ],
)
def test_urls_on_private_addresses_are_refused_with_a_clear_message(tenant, refuse_private, url, words):
    response = _create(tenant.api, url=url)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert words in error["message"]
    assert "public" in error["message"]
    assert error["fields"]["url"] == [error["message"]]
    assert not WebhookEndpoint.objects.for_merchant(tenant.merchant).exists()


def test_private_urls_are_allowed_when_the_setting_says_so(tenant, allow_private):
    assert _create(tenant.api, url="http://127.0.0.1:9000/hook").status_code == 201


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "allowed"),
    [
        ({"DEBUG": "false"}, "False"),
        ({"DEBUG": "true"}, "True"),
        ({"DEBUG": "true", "WEBHOOKS_ALLOW_PRIVATE_URLS": "false"}, "False"),
    ],
)
def test_private_urls_are_allowed_by_default_only_in_development(env, allowed):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "WEBHOOKS_ALLOW_PRIVATE_URLS")}
    result = subprocess.run(
        [sys.executable, "-c", "from referral_saas import settings; print(settings.WEBHOOKS_ALLOW_PRIVATE_URLS)"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == allowed, result.stderr


def test_another_merchants_endpoint_is_a_404_and_is_not_deleted(tenant, other_tenant):
    endpoint_id = _create(tenant.api).json()["id"]
    assert other_tenant.api.get(f"{PATH}/{endpoint_id}").status_code == 404
    response = other_tenant.api.delete(f"{PATH}/{endpoint_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert other_tenant.api.get(PATH).json()["results"] == []
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=endpoint_id).exists()


def test_test_mode_keys_see_test_mode_endpoints_only(tenant):
    _key, raw = make_api_key(tenant.merchant, mode="test")
    live_id = _create(tenant.api).json()["id"]
    tenant.api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    created = _create(tenant.api, url="https://hooks.shop.example/test").json()

    assert created["livemode"] is False
    assert [item["id"] for item in tenant.api.get(PATH).json()["results"]] == [created["id"]]
    assert tenant.api.get(f"{PATH}/{live_id}").status_code == 404
    assert tenant.api.delete(f"{PATH}/{live_id}").status_code == 404
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).filter(pk=live_id).exists()


@pytest.mark.parametrize("endpoint_id", ["0", "99999999999999999999", "abc", "-1"])
def test_unknown_or_malformed_ids_are_a_json_404(tenant, endpoint_id):
    response = tenant.api.get(f"{PATH}/{endpoint_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_number_of_endpoints_per_mode_is_capped(tenant):
    for n in range(MAX_ENDPOINTS_PER_MODE):
        assert _create(tenant.api, url=f"https://hooks.shop.example/{n}").status_code == 201
    response = _create(tenant.api)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_endpoints"


def test_lists_are_cursor_paginated(tenant):
    for n in range(3):
        _create(tenant.api, url=f"https://hooks.shop.example/{n}")
    page = tenant.api.get(PATH, {"limit": 2}).json()
    assert len(page["results"]) == 2
    rest = tenant.api.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert [i["url"] for i in page["results"] + rest["results"]] == [
        f"https://hooks.shop.example/{n}" for n in (2, 1, 0)
    ]


def test_the_api_needs_a_key(tenant):
    from rest_framework.test import APIClient

    assert APIClient().get(PATH).status_code == 401
    assert APIClient().post(PATH, {"url": URL}, format="json").status_code == 401


def test_a_url_in_capitals_is_stored_in_lower_case(tenant, allow_private):
    response = _create(tenant.api, url="HTTPS://Hooks.Example/In/Path")
    assert response.status_code == 201, response.content
    assert response.json()["url"] == "https://hooks.example/In/Path"  # the path keeps its case


def test_the_secret_is_not_stored_with_the_idempotent_replay(tenant):
    from referral_saas.tenancy.models import IdempotencyRecord

    first = tenant.api.post(PATH, {"url": URL}, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert first.status_code == 201
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")

    record = IdempotencyRecord.objects.for_merchant(tenant.merchant).get(key="hook-1")
    assert secret not in str(record.response_body)
    assert secret.removeprefix("whsec_") not in str(record.response_body)
    assert record.response_body["secret"] is None

    replay = tenant.api.post(PATH, {"url": URL}, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    body = replay.json()
    assert body["secret"] is None
    assert {k: v for k, v in body.items() if k != "secret"} == {k: v for k, v in first.json().items() if k != "secret"}
    assert body["secret_hint"] == f"whsec_…{secret[-4:]}"  # the one they kept can still be told apart
    assert WebhookEndpoint.objects.for_merchant(tenant.merchant).count() == 1


def test_the_schema_says_a_replayed_secret_is_null(tenant):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    secret = schema["components"]["schemas"]["WebhookEndpointCreated"]["properties"]["secret"]
    assert secret.get("nullable") is True
    assert "Idempotency-Key" in secret["description"]
