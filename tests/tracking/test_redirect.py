"""GET /r/<code>: the referral link. Fast, never loses a click, never counts a bot, never breaks for a person."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from programs.models import Program
from referral_saas import redis_client
from referral_saas.devices import DEVICE_COOKIE
from tracking import services
from tracking.clicks import STREAM, clicks_ingest
from tracking.models import Click, ReferralCode
from tracking.selectors import LINKS_VERSION_KEY, VERSION_CHECK_SECONDS, local_cache

pytestmark = pytest.mark.django_db

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _follow(client, code: str, query: str = "", ua: str = CHROME):
    return client.get(f"/r/{code}{query}", HTTP_USER_AGENT=ua, REMOTE_ADDR="203.0.113.9")


def test_link_redirects_to_the_landing_page_with_ref_and_click_id_keeping_its_parameters(
    client, referrer, click_stream
):
    _participant, code = referrer
    response = _follow(client, code.code)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example", "/welcome")
    query = parse_qs(location.query)
    assert query["lang"] == ["pl"]  # the landing URL's own parameter survives
    assert query["ref"] == [code.code]
    assert len(query["rs_click"][0]) == 32
    assert response["Cache-Control"] == "no-store"


def test_codes_are_case_dash_and_lookalike_insensitive(client, referrer, click_stream):
    _participant, code = referrer
    services.code_set_vanity(code=code, vanity="ANNA-10")
    for typed in ("anna-10", "ANNA10", "anna-1O", "ANNA-IO"):
        response = _follow(client, typed)
        assert response.status_code == 302, typed
        assert "ref=ANNA-10" in response["Location"]


def test_the_click_reaches_postgres_through_the_stream_with_its_details(client, referrer, click_stream):
    _participant, code = referrer
    response = _follow(client, code.code, "?utm_source=whatsapp&utm_campaign=spring", ua=CHROME)
    click_id = parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]
    assert "utm_source=whatsapp" in response["Location"]  # passed on to the shop's analytics too
    assert Click.objects.for_merchant(code.merchant).count() == 0  # the request wrote nothing to PostgreSQL
    assert clicks_ingest() == 1
    click = Click.objects.for_merchant(code.merchant).get()
    assert click.click_id.hex == click_id
    assert (click.code, click.program, click.participant) == (code, code.program, code.participant)
    assert (click.utm_source, click.utm_campaign, click.is_bot) == ("whatsapp", "spring", False)
    assert click.ip_hash
    assert "203.0.113.9" not in click.ip_hash
    assert click.user_agent == CHROME


def test_the_link_gives_a_new_browser_a_device_cookie_and_its_clicks_carry_the_id(client, referrer, click_stream):
    _participant, code = referrer

    first = _follow(client, code.code)
    second = _follow(client, code.code)

    cookie = first.cookies[DEVICE_COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cookie.value)
    assert (cookie["httponly"], cookie["samesite"], cookie["max-age"]) == (True, "Lax", 2 * 365 * 24 * 3600)
    assert not cookie["secure"]
    assert DEVICE_COOKIE not in second.cookies  # kept, not reset
    assert clicks_ingest() == 2
    devices = set(Click.objects.for_merchant(code.merchant).values_list("device_id", flat=True))
    assert devices == {cookie.value}


def test_the_links_device_cookie_is_secure_over_https(client, referrer, click_stream):
    _participant, code = referrer
    response = client.get(f"/r/{code.code}", HTTP_USER_AGENT=CHROME, secure=True)
    assert response.cookies[DEVICE_COOKIE]["secure"] is True


def test_a_browser_with_a_device_cookie_clicks_with_that_id(client, referrer, click_stream):
    _participant, code = referrer
    client.cookies[DEVICE_COOKIE] = "portal-device-id-0001"
    assert DEVICE_COOKIE not in _follow(client, code.code).cookies
    clicks_ingest()
    assert Click.objects.for_merchant(code.merchant).get().device_id == "portal-device-id-0001"


@pytest.mark.parametrize(
    "ua",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0 A",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "",
    ],
)
def test_bots_and_link_previews_are_redirected_but_not_counted(client, referrer, click_stream, ua):
    _participant, code = referrer
    assert _follow(client, code.code, ua=ua).status_code == 302
    clicks_ingest()
    click = Click.objects.for_merchant(code.merchant).get()
    assert click.is_bot is True
    assert Click.objects.for_merchant(code.merchant).filter(is_bot=False).count() == 0


@contextlib.contextmanager
def _redis_round_trips(monkeypatch):
    """Counts what this process sends Redis (one send per command, or per pipeline)."""
    sent = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(b"".join(command) if isinstance(command, list | tuple) else command)
        return send(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
        yield sent


def test_a_click_costs_no_query_and_one_redis_round_trip_once_the_code_is_cached(
    client, referrer, click_stream, django_assert_num_queries, monkeypatch
):
    _participant, code = referrer
    _follow(client, code.code)  # warms the caches
    with django_assert_num_queries(0), _redis_round_trips(monkeypatch) as sent:
        for _ in range(5):
            assert _follow(client, code.code, "?utm_source=x").status_code == 302
    assert len([command for command in sent if b"XADD" in command]) == 5  # one per click
    # Besides: at most the process's version check (once a second), never a cache lookup.
    assert all(LINKS_VERSION_KEY.encode() in command for command in sent if b"XADD" not in command)
    assert len(sent) <= 6
    assert click_stream.xlen(STREAM) == 6


def test_the_redirect_keeps_the_request_id_and_security_headers(client, referrer, click_stream, settings):
    _participant, code = referrer
    response = client.get(f"/r/{code.code}", HTTP_USER_AGENT=CHROME, HTTP_X_REQUEST_ID="lb-0123456789", secure=True)
    assert response.status_code == 302
    assert response["X-Request-ID"] == "lb-0123456789"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == settings.SECURE_REFERRER_POLICY
    assert response["Cache-Control"] == "no-store"


def test_a_link_changed_by_another_process_is_seen_here_within_a_second(client, referrer, click_stream, monkeypatch):
    _participant, code = referrer
    assert _follow(client, code.code).status_code == 302  # this process now holds the code
    with monkeypatch.context() as patch:
        # Another process disables the code: this process's memory is not touched, only Redis is.
        patch.setattr(local_cache, "clear", lambda: None)
        services.code_set_status(code=code, status=ReferralCode.Status.DISABLED)
    local_cache.links_checked_at -= VERSION_CHECK_SECONDS  # a second later
    response = _follow(client, code.code)
    assert response.status_code == 404
    assert b"This referral link is not active" in response.content


def test_the_friendly_page_speaks_the_visitors_language(client, db, click_stream):
    response = client.get("/r/NOPE-0000", HTTP_USER_AGENT=CHROME, HTTP_ACCEPT_LANGUAGE="pl")
    assert response.status_code == 404
    assert "Ten link polecający jest nieaktywny" in response.content.decode()


def test_unknown_code_gets_a_friendly_page(client, db, click_stream):
    response = _follow(client, "NOPE-0000")
    assert response.status_code == 404
    assert b"This referral link is not active" in response.content
    assert b"NOPE-0000" in response.content


def test_disabled_code_and_blocked_referrer_get_the_friendly_page(client, referrer, click_stream):
    from programs.services import participant_set_status

    participant, code = referrer
    services.code_set_status(code=code, status=ReferralCode.Status.DISABLED)
    from tracking.selectors import local_cache

    local_cache.clear()
    assert _follow(client, code.code).status_code == 404
    services.code_set_status(code=code, status=ReferralCode.Status.ACTIVE)
    participant_set_status(participant=participant, status="blocked")
    local_cache.clear()
    assert _follow(client, code.code).status_code == 404


def test_inactive_program_redirects_to_the_landing_page_without_attribution(client, referrer, click_stream):
    from programs.services import program_set_status
    from tracking.selectors import local_cache

    _participant, code = referrer
    program_set_status(program=code.program, status=Program.Status.PAUSED)
    local_cache.clear()
    response = _follow(client, code.code)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/welcome?lang=pl"
    assert click_stream.xlen(STREAM) == 0


def test_redis_down_still_redirects_and_the_click_goes_straight_to_postgres(client, referrer, settings, click_stream):
    _participant, code = referrer
    _follow(client, code.code)  # the code is cached in this process
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client.get_redis.cache_clear()
    try:
        response = _follow(client, code.code, "?utm_source=mail")
    finally:
        redis_client.get_redis.cache_clear()
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["ref"] == [code.code]
    assert query["utm_source"] == ["mail"]
    # Counted all the same, and its id names it: an order placed with it links to it.
    click = Click.objects.for_merchant(code.merchant).get()
    assert click.click_id.hex == query["rs_click"][0]
    assert (click.code, click.utm_source, click.is_bot) == (code, "mail", False)


def test_a_click_id_names_a_click_even_before_it_is_ingested(client, referrer, click_stream):
    from tracking.clicks import pending_click

    _participant, code = referrer
    response = _follow(client, code.code)
    click_id = parse_qs(urlsplit(response["Location"]).query)["rs_click"][0]
    pending = pending_click(click_id)
    assert int(pending["code_id"]) == code.pk


def test_head_requests_redirect_too_and_posts_are_refused(client, referrer, click_stream):
    _participant, code = referrer
    assert client.head(f"/r/{code.code}").status_code == 302
    assert client.post(f"/r/{code.code}").status_code == 405
