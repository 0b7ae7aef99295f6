"""GA4 referral_click: referral.js on the landing page tells `POST /t/ga` the click id (rs_click), its code (ref) and
the shop's `_ga` client id; that click, once, becomes a referral_click Measurement Protocol event for the merchant's
GA4 connection, sent to a real local HTTP server. Unknown, foreign, bot or repeated clicks and bad bodies are 4xx
JSON, never 500; the endpoint is rate-limited per IP."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from integrations.models import OutboundSync
from tests.factories import ProgramFactory, join
from tests.integrations.marketing import marketing_connection, sync_all, syncs
from tracking.clicks import STREAM, clicks_ingest
from tracking.models import Click

pytestmark = pytest.mark.django_db

QUERY = "measurement_id=G-TEST123&api_secret=mp-secret"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"
GA = "1234567890.1712345678"


def connect(merchant, httpserver):
    return marketing_connection(merchant, "ga4", httpserver, account="G-TEST123", secret="mp-secret")


def clicked(client, code, user_agent: str = BROWSER) -> str:
    response = client.get(f"/r/{code.code}", HTTP_USER_AGENT=user_agent)
    return parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]


def beacon(client, body, *, content_type: str = "text/plain;charset=UTF-8", ip: str = "203.0.113.9"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/t/ga", data=data, content_type=content_type, REMOTE_ADDR=ip)


def test_a_click_told_by_the_snippet_is_a_referral_click_event_sent_once(
    client, tenant, referrer, click_stream, httpserver
):
    _anna, code = referrer
    connection = connect(tenant.merchant, httpserver)
    click_id = clicked(client, code)
    httpserver.expect_ordered_request(
        "/mp/collect",
        method="POST",
        query_string=QUERY,
        json={
            "client_id": GA,
            "events": [
                {
                    "name": "referral_click",
                    "params": {"referral_code": code.code, "program": "friends", "click_id": click_id},
                }
            ],
        },
    ).respond_with_data("", status=204)

    # Told seconds after the redirect: the click is still in the stream, not yet in PostgreSQL.
    first = beacon(client, {"click_id": click_id, "code": code.code, "ga_client_id": GA})
    assert (first.status_code, first.json()) == (202, {"queued": True})
    assert first["Access-Control-Allow-Origin"] == "*"
    clicks_ingest()
    again = beacon(client, {"click_id": click_id, "code": code.code.lower(), "ga_client_id": "99.99"})
    sync_all(connection)

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_recorded"
    httpserver.check_assertions()
    assert len(httpserver.log) == 1
    [sent] = syncs(connection, status="sent")
    assert (sent.key, sent.request) == (f"referral.click:{click_id}", "POST /mp/collect (referral_click)")


def test_an_ingested_click_is_found_in_postgresql_and_sent_as_json_too(
    client, tenant, referrer, click_stream, httpserver
):
    _anna, code = referrer
    connection = connect(tenant.merchant, httpserver)
    click_id = clicked(client, code)
    clicks_ingest()
    click_stream.delete(STREAM)  # nothing left in the buffer: only PostgreSQL knows it
    assert Click.objects.for_merchant(tenant.merchant).filter(click_id=click_id).exists()
    httpserver.expect_request("/mp/collect", method="POST", query_string=QUERY).respond_with_data("", status=204)

    response = beacon(
        client, {"click_id": click_id, "code": code.code, "ga_client_id": GA}, content_type="application/json"
    )
    sync_all(connection)

    assert response.status_code == 202
    assert httpserver.log[0][0].get_json()["client_id"] == GA


def test_without_a_ga4_connection_nothing_is_queued(client, tenant, referrer, click_stream):
    _anna, code = referrer
    click_id = clicked(client, code)

    response = beacon(client, {"click_id": click_id, "code": code.code, "ga_client_id": GA})

    assert (response.status_code, response.json()) == (200, {"queued": False})
    assert not OutboundSync.objects.for_merchant(tenant.merchant).exists()


def test_unknown_foreign_and_bot_clicks_are_refused(client, tenant, other_tenant, referrer, click_stream, httpserver):
    _anna, code = referrer
    connect(tenant.merchant, httpserver)
    other_program = ProgramFactory(merchant=other_tenant.merchant, slug="friends")
    _beta, other_code = join(other_program, email="beta@example.com")
    other_click = clicked(client, other_code)
    bot_click = clicked(client, code, user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
    _ana2, second_code = join(ProgramFactory(merchant=tenant.merchant, slug="second"), email="ana2@example.com")
    own_click = clicked(client, second_code)

    cases = {
        "made up": {"click_id": "0" * 32, "code": code.code, "ga_client_id": GA},
        "unknown code": {"click_id": own_click, "code": "NOPE-NOPE", "ga_client_id": GA},
        "another merchant's click": {"click_id": other_click, "code": code.code, "ga_client_id": GA},
        "another code's click": {"click_id": own_click, "code": code.code, "ga_client_id": GA},
        "a bot's click": {"click_id": bot_click, "code": code.code, "ga_client_id": GA},
    }
    for case, body in cases.items():
        response = beacon(client, body)
        assert response.status_code == 404, case
        assert response.json()["error"]["code"] == "unknown_click", case
    assert not OutboundSync.objects.for_merchant(tenant.merchant).exists()


def test_a_click_older_than_ga4_takes_is_refused(client, tenant, referrer, click_stream, httpserver):
    _anna, code = referrer
    connect(tenant.merchant, httpserver)
    click_id = clicked(client, code)
    clicks_ingest()
    click_stream.delete(STREAM)
    Click.objects.for_merchant(tenant.merchant).filter(click_id=click_id).update(
        occurred_at=timezone.now() - timedelta(hours=73)
    )

    response = beacon(client, {"click_id": click_id, "code": code.code, "ga_client_id": GA})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "click_too_old"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "bad_json"),
        (b"\xff\xfe", 400, "bad_json"),
        (b"[1, 2]", 400, "bad_json"),
        ({"click_id": "xyz", "code": "ABC", "ga_client_id": GA}, 400, "validation_error"),
        ({"click_id": "0" * 32, "code": "ABC", "ga_client_id": "GA1.1.<script>"}, 400, "validation_error"),
        ({"click_id": 5, "code": ["A"], "ga_client_id": None}, 400, "validation_error"),
        ({"click_id": "0" * 32, "code": "ABC", "ga_client_id": GA, "pad": "x" * 2000}, 413, "payload_too_large"),
        ({"click_id": "0" * 32, "code": "\u0000<\ud800>ÄÖ", "ga_client_id": GA}, 400, "validation_error"),
    ],
)
def test_bad_bodies_are_4xx_json(client, db, body, status, code):
    response = beacon(client, body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_only_post_is_answered(client, db):
    response = client.get("/t/ga")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_beacon_is_rate_limited_per_ip(client, db, monkeypatch):
    from integrations import views

    monkeypatch.setattr(views, "GA_BEACON_PER_MINUTE", 3)
    body = {"click_id": "0" * 32, "code": "NOPE-NOPE", "ga_client_id": GA}
    answers = [beacon(client, body, ip="198.51.100.7") for _ in range(4)]

    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert int(answers[-1]["Retry-After"]) >= 1
    assert beacon(client, body, ip="198.51.100.8").status_code == 404  # another visitor is not held up
