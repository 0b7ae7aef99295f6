"""Mailchimp against a real local HTTP server: our merge fields are created once in the audience, then consenting
participants are sent in batches (one batch subscribe/update POST per batch, with HTTP basic auth), a member Mailchimp
refuses fails alone; erasure deletes the member under the MD5 of the lower-cased email; the host is the data centre
named by the key."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.conf import settings

from integrations.models import Connection
from integrations.providers import provider_for
from integrations.services import connection_create
from programs.services import participant_erase
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db

KEY = "0123456789abcdef-us21"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"referral:{KEY}".encode()).decode()}


def member(email: str, code, *, count: int = 0, language: str = "pl") -> dict:
    return {
        "email_address": email,
        "status": "subscribed",
        "merge_fields": {
            "REFLINK": f"{settings.SITE_URL}/r/{code.code}",
            "REFCODE": code.code,
            "REFCOUNT": count,
            "REFSTATUS": "active",
            "NXTREWARD": "",
        },
        "language": language,
    }


def batch_answer(*, errors: list | None = None) -> dict:
    errors = errors or []
    return {"new_members": [], "updated_members": [], "errors": errors, "error_count": len(errors)}


def test_merge_fields_are_made_once_then_members_are_sent_in_one_batch_call(program, httpserver):
    connection = marketing_connection(program.merchant, "mailchimp", httpserver, account="aud42", secret=KEY)
    httpserver.expect_ordered_request(
        "/3.0/lists/aud42/merge-fields", method="GET", headers=AUTH, query_string="count=100"
    ).respond_with_json({"merge_fields": [{"tag": "FNAME"}, {"tag": "REFCODE"}]})
    for tag, name, kind in [
        ("REFLINK", "Referral link", "url"),
        ("REFCOUNT", "Referrals", "number"),
        ("REFSTATUS", "Referral status", "text"),
        ("NXTREWARD", "Next referral reward", "text"),
    ]:
        httpserver.expect_ordered_request(
            "/3.0/lists/aud42/merge-fields", method="POST", headers=AUTH, json={"tag": tag, "name": name, "type": kind}
        ).respond_with_json({"tag": tag})
    _first, first_code = joins(program, email="Ewa.Nowak@Example.COM")
    _second, second_code = joins(program, email="jan@example.com")
    httpserver.expect_ordered_request(
        "/3.0/lists/aud42",
        method="POST",
        headers=AUTH,
        json={
            "members": [member("Ewa.Nowak@Example.COM", first_code), member("jan@example.com", second_code)],
            "update_existing": True,
        },
    ).respond_with_json(batch_answer())

    sync_all(connection)
    httpserver.check_assertions()

    # A third participant: the merge fields exist now, only the batch (of one) is sent.
    _third, third_code = joins(program, email="ola@example.com")
    httpserver.expect_ordered_request(
        "/3.0/lists/aud42",
        method="POST",
        headers=AUTH,
        json={"members": [member("ola@example.com", third_code)], "update_existing": True},
    ).respond_with_json(batch_answer())
    sync_all(connection)

    httpserver.check_assertions()
    assert [r.method for r, _resp in httpserver.log].count("GET") == 1
    assert len(httpserver.log) == 1 + 4 + 2  # GET, four merge fields, two batch calls: no call per member
    assert {s.status for s in syncs(connection)} == {"sent"}
    assert [s.request for s in sorted(syncs(connection), key=lambda s: s.pk)] == [
        "POST /3.0/lists/aud42 x2",
        "POST /3.0/lists/aud42 x2",
        "POST /3.0/lists/aud42 x1",
    ]


def test_a_member_mailchimp_refuses_in_a_batch_fails_alone_and_the_others_are_done(program, httpserver):
    connection = marketing_connection(program.merchant, "mailchimp", httpserver, account="aud42", secret=KEY)
    httpserver.expect_request("/3.0/lists/aud42/merge-fields", method="GET").respond_with_json(
        {"merge_fields": [{"tag": t} for t in ("REFLINK", "REFCODE", "REFCOUNT", "REFSTATUS", "NXTREWARD")]}
    )
    accepted, _code = joins(program, email="fine@example.com")
    refused, _code = joins(program, email="Left.Us@Example.com")
    httpserver.expect_oneshot_request("/3.0/lists/aud42", method="POST", headers=AUTH).respond_with_json(
        batch_answer(
            errors=[
                {
                    "email_address": "left.us@example.com",
                    "error": "Left.Us@Example.com is in a compliance state due to unsubscribe.",
                    "error_code": "ERROR_CONTACT_EXISTS",
                }
            ]
        )
    )

    sync_all(connection)

    assert len(httpserver.log) == 2  # the merge fields' GET and one batch call
    by_participant = {s.participant_id: s for s in syncs(connection)}
    assert (by_participant[accepted.pk].status, by_participant[accepted.pk].last_error) == ("sent", "")
    failed = by_participant[refused.pk]
    assert (failed.status, failed.next_attempt_at) == ("failed", None)
    assert "compliance state" in failed.last_error
    assert "ERROR_CONTACT_EXISTS" in failed.last_error
    assert "compliance state" in Connection.objects.for_merchant(program.merchant).get(pk=connection.pk).last_error


def test_erasure_deletes_the_member_permanently(program, httpserver):
    connection = marketing_connection(program.merchant, "mailchimp", httpserver, account="aud42", secret=KEY)
    httpserver.expect_request("/3.0/lists/aud42/merge-fields", method="GET").respond_with_json(
        {"merge_fields": [{"tag": t} for t in ("REFLINK", "REFCODE", "REFCOUNT", "REFSTATUS", "NXTREWARD")]}
    )
    participant, _code = joins(program, email="Gone@Example.com")
    md5 = hashlib.md5(b"gone@example.com").hexdigest()  # noqa: S324
    httpserver.expect_request("/3.0/lists/aud42", method="POST").respond_with_json(batch_answer())
    sync_all(connection)

    httpserver.expect_request(
        f"/3.0/lists/aud42/members/{md5}/actions/delete-permanent", method="POST", headers=AUTH
    ).respond_with_data("", status=204)
    participant_erase(participant=participant)
    sync_all(connection)

    assert httpserver.log[-1][0].path == f"/3.0/lists/aud42/members/{md5}/actions/delete-permanent"
    assert syncs(connection, kind="erase")[0].status == "sent"


def test_the_host_is_the_data_centre_named_by_the_key(merchant):
    connection, _created = connection_create(merchant=merchant, provider="mailchimp", account="aud1", secret=KEY)
    assert provider_for("mailchimp").base_url(connection) == "https://us21.api.mailchimp.com"
