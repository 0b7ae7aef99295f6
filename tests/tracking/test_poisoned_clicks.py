"""Control characters and malformed entries in the click stream: a NUL from one visitor used to make PostgreSQL
refuse the whole batch, so no merchant's clicks were stored any more and orders naming the click failed."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from tests.factories import ProgramFactory, join
from tests.tracking.streams import stream_entry
from tracking import clicks
from tracking.clicks import DEAD_STREAM, GROUP, STREAM, clicks_ingest, dead_letters
from tracking.models import Click, Conversion, Referral

pytestmark = pytest.mark.django_db


def _json(entry: dict) -> dict:
    return {"d": json.dumps(entry)}  # as the redirect buffers a click (json escapes a NUL as \u0000)


def test_a_link_with_control_characters_redirects_and_its_click_is_stored_cleaned(client, referrer, click_stream):
    _participant, code = referrer
    response = client.get(
        f"/r/{code.code}?utm_source=%00evil&utm_campaign=a%01b&utm_medium=two%0Alines&utm_term=%C2%85%E2%80%A8",
        HTTP_USER_AGENT="Mozilla/5.0\x00 (X11; Linux)\x1b[2J\u2028Firefox\x9b",
        HTTP_REFERER="https://news.example/\x00page",
    )

    assert response.status_code == 302
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["utm_source"] == ["evil"]
    assert query["utm_campaign"] == ["ab"]
    assert query["utm_medium"] == ["two lines"]
    assert "utm_term" not in query  # nothing but control characters: nothing to pass on
    assert "%00" not in location
    assert "%01" not in location
    assert clicks_ingest() == 1
    click = Click.objects.for_merchant(code.merchant).get()
    assert click.click_id.hex == query["rs_click"][0]
    assert (click.utm_source, click.utm_campaign, click.utm_medium, click.utm_term) == ("evil", "ab", "two lines", "")
    assert click.user_agent == "Mozilla/5.0 (X11; Linux)[2J Firefox"
    assert click.referer == "https://news.example/page"
    assert click_stream.xlen(DEAD_STREAM) == 0


def test_a_click_buffered_with_control_characters_before_the_fix_is_stored_cleaned(referrer, click_stream):
    _participant, code = referrer
    poisoned = stream_entry(code, utm_source="\x00evil", ua="Moz\x00illa\ud800", referer="a\u2029b")
    click_stream.xadd(STREAM, _json(poisoned))
    click_stream.xadd(STREAM, {**stream_entry(code), "utm_campaign": "a\x00b"})  # the older one-field-per-value entry

    assert clicks_ingest() == 2

    stored = Click.objects.for_merchant(code.merchant).values_list(
        "utm_source", "utm_campaign", "user_agent", "referer"
    )
    assert sorted(stored) == [("", "ab", "Mozilla/5.0", ""), ("evil", "", "Mozilla", "a b")]
    assert click_stream.xlen(DEAD_STREAM) == 0


def test_poison_entries_go_to_the_dead_letters_and_every_good_click_is_stored(
    client, referrer, other_tenant, click_stream
):
    _participant, code = referrer
    _p, foreign_code = join(ProgramFactory(merchant=other_tenant.merchant), email="zoe@people.example")
    incomplete = stream_entry(code)
    del incomplete["code_id"]
    poison = {
        "nul in an id": _json(stream_entry(code, code_id=f"{code.pk}\x00")),
        "nul in an older entry's id": {**stream_entry(code), "merchant_id": f"{code.merchant_id}\x00"},
        "bad json": {"d": b'{"click_id": "abc", '},
        "not utf-8": {"d": b"\xc3\x28\xa0\xa1"},
        "a list": {"d": b"[1, 2, 3]"},
        "missing code_id": _json(incomplete),
        "non-numeric merchant": _json(stream_entry(code, merchant_id="shop-1")),
        "bad uuid": _json(stream_entry(code, click_id="not-a-uuid")),
        "ts out of range": _json(stream_entry(code, ts="1e300")),
        "livemode neither 0 nor 1": _json(stream_entry(code, livemode="maybe")),
        "unknown code": _json(stream_entry(code, code_id=2**40)),
        "another merchant's code": _json(stream_entry(foreign_code, merchant_id=code.merchant_id)),
        "text that is an object": _json(stream_entry(code, ua={"x": 1})),
    }
    good_ids = []
    for fields in poison.values():
        good = stream_entry(code)
        good_ids.append(good["click_id"])
        click_stream.xadd(STREAM, _json(good))
        click_stream.xadd(STREAM, fields)

    assert clicks_ingest() == len(good_ids)

    stored = Click.objects.for_merchant(code.merchant).values_list("click_id", flat=True)
    assert sorted(c.hex for c in stored) == sorted(good_ids)
    assert Click.objects.for_merchant(other_tenant.merchant).count() == 0
    assert click_stream.xlen(STREAM) == 0
    assert click_stream.xpending(STREAM, GROUP)["pending"] == 0
    letters = dead_letters(count=100)
    assert len(letters) == click_stream.xlen(DEAD_STREAM) == len(poison)
    reasons = " | ".join(letter["reason"] for letter in letters)
    for expected in ("code_id is not an id", "merchant_id is not an id", "not JSON", "not an object", "missing code_id",
                     "click_id is not a uuid", "ts out of range", "livemode is not 0 or 1", "unknown code",
                     f"is not code {foreign_code.pk}'s", "ua is a dict"):  # fmt: skip
        assert expected in reasons
    assert all(letter["reason"] and letter["source_id"] for letter in letters)
    assert any("shop-1" in letter["data"] for letter in letters)  # what the entry held, for the operator

    # The operator sees them: /readyz counts them, the command lists them (and clears them once read).
    readyz = client.get("/readyz").json()
    assert readyz["status"] == "ok"
    assert readyz["checks"]["redis"]["clicks_dead_letter"] == len(poison)
    out = io.StringIO()
    call_command("clickdeadletters", "--json", "--clear", stdout=out, stderr=io.StringIO())
    listed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {letter["reason"] for letter in listed} == {letter["reason"] for letter in letters}
    assert click_stream.xlen(DEAD_STREAM) == 0
    assert clicks_ingest() == 0


def test_a_batch_the_database_refuses_is_stored_row_by_row_and_only_the_refused_click_is_dead_lettered(
    referrer, click_stream, monkeypatch
):
    _participant, code = referrer
    # A value no check foresaw reaches PostgreSQL: here a code that does not exist, with the check switched off.
    monkeypatch.setattr(clicks, "_unstorable", lambda row, owners: None)
    good = [stream_entry(code) for _ in range(3)]
    click_stream.xadd(STREAM, _json(good[0]))
    click_stream.xadd(STREAM, _json(stream_entry(code, code_id=2**40)))
    for entry in good[1:]:
        click_stream.xadd(STREAM, _json(entry))

    assert clicks_ingest() == 3

    stored = Click.objects.for_merchant(code.merchant).values_list("click_id", flat=True)
    assert sorted(c.hex for c in stored) == sorted(e["click_id"] for e in good)
    [letter] = dead_letters()
    assert letter["reason"].startswith("refused by the database: IntegrityError")
    assert click_stream.xlen(STREAM) == 0
    assert click_stream.xpending(STREAM, GROUP)["pending"] == 0


def _order(api, click_id: str, order_id: str = "1001"):
    body = {"order_id": order_id, "amount": "50.00", "currency": "PLN", "customer": {"email": "bob@x.example"}}
    return api.post("/api/v1/conversions", {**body, "click_id": click_id}, format="json")


def test_an_order_naming_a_buffered_click_with_control_characters_is_attributed_to_it(tenant, referrer, click_stream):
    _participant, code = referrer
    entry = stream_entry(code, utm_source="\x00evil", ua="Mozilla/5.0\x00")
    click_stream.xadd(STREAM, _json(entry))

    response = _order(tenant.api, entry["click_id"])

    assert response.status_code == 201, response.content
    assert response.json()["attributed"] is True
    conversion = Conversion.objects.for_merchant(tenant.merchant).select_related("click").get()
    assert (conversion.click.utm_source, conversion.click.user_agent) == ("evil", "Mozilla/5.0")
    assert clicks_ingest() == 1  # the ingest's own insert of the same click is a no-op
    assert Click.objects.for_merchant(tenant.merchant).count() == 1


def test_a_sign_up_naming_a_buffered_click_with_control_characters_is_referred(tenant, referrer, click_stream):
    _participant, code = referrer
    entry = stream_entry(code, referer="https://x.example/\x00")
    click_stream.xadd(STREAM, _json(entry))

    response = tenant.api.post(
        "/api/v1/referrals", {"click_id": entry["click_id"], "customer": {"email": "bob@x.example"}}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Referral.objects.for_merchant(tenant.merchant).get().click.referer == "https://x.example/"


def test_an_order_naming_a_buffered_click_that_cannot_be_stored_is_a_clear_error(tenant, referrer, click_stream):
    _participant, code = referrer
    entry = stream_entry(code, merchant_id="shop-1")
    click_stream.xadd(STREAM, _json(entry))

    response = _order(tenant.api, entry["click_id"])

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_click"
    assert Click.objects.for_merchant(tenant.merchant).count() == 0
    assert clicks_ingest() == 0
    assert click_stream.xlen(DEAD_STREAM) == 1
