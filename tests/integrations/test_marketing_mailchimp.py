"""Mailchimp against a real local HTTP server: our merge fields are created once in the audience, then each
consenting participant is PUT as a member under the MD5 of the lower-cased email, with HTTP basic auth; the host is
the data centre named by the key."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.conf import settings

from integrations.providers import provider_for
from integrations.services import connection_create
from programs.services import participant_erase
from tests.integrations.marketing import joins, marketing_connection, sync_all, syncs

pytestmark = pytest.mark.django_db

KEY = "0123456789abcdef-us21"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"referral:{KEY}".encode()).decode()}


def test_merge_fields_are_made_once_then_members_are_put_by_the_md5_of_their_email(program, httpserver):
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
    md5 = hashlib.md5(b"ewa.nowak@example.com").hexdigest()  # noqa: S324
    httpserver.expect_ordered_request(
        f"/3.0/lists/aud42/members/{md5}",
        method="PUT",
        headers=AUTH,
        json={
            "email_address": "Ewa.Nowak@Example.COM",
            "status_if_new": "subscribed",
            "merge_fields": {
                "REFLINK": f"{settings.SITE_URL}/r/{first_code.code}",
                "REFCODE": first_code.code,
                "REFCOUNT": 0,
                "REFSTATUS": "active",
                "NXTREWARD": "",
            },
            "language": "pl",
        },
    ).respond_with_json({"id": md5})

    sync_all(connection)
    httpserver.check_assertions()

    # A second participant: the merge fields exist now, only the member is PUT.
    joins(program, email="jan@example.com")
    httpserver.expect_ordered_request(
        f"/3.0/lists/aud42/members/{hashlib.md5(b'jan@example.com').hexdigest()}",  # noqa: S324
        method="PUT",
        headers=AUTH,
    ).respond_with_json({})
    sync_all(connection)

    httpserver.check_assertions()
    assert [r.method for r, _resp in httpserver.log].count("GET") == 1
    assert {s.status for s in syncs(connection)} == {"sent"}
    assert syncs(connection)[0].request == "PUT /3.0/lists/aud42/members/<md5> x1"


def test_erasure_deletes_the_member_permanently(program, httpserver):
    connection = marketing_connection(program.merchant, "mailchimp", httpserver, account="aud42", secret=KEY)
    httpserver.expect_request("/3.0/lists/aud42/merge-fields", method="GET").respond_with_json(
        {"merge_fields": [{"tag": t} for t in ("REFLINK", "REFCODE", "REFCOUNT", "REFSTATUS", "NXTREWARD")]}
    )
    participant, _code = joins(program, email="Gone@Example.com")
    md5 = hashlib.md5(b"gone@example.com").hexdigest()  # noqa: S324
    httpserver.expect_request(f"/3.0/lists/aud42/members/{md5}", method="PUT").respond_with_json({})
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
