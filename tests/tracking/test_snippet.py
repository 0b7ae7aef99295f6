"""referral.js's device id: set once per browser on the shop's domain, kept, sent with the checkout form, and never
an error on the shop's page (run in node, in a small stand-in for a page: tests/tracking/snippet_page.js)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

NODE = shutil.which("node") or shutil.which("nodejs")
SNIPPET = Path(settings.BASE_DIR) / "static" / "referral.js"
PAGE = Path(__file__).with_name("snippet_page.js")
ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
TWO_YEARS = 2 * 365 * 24 * 60 * 60

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _page(**scenario) -> dict:
    done = subprocess.run(
        [NODE, str(PAGE), str(SNIPPET), json.dumps(scenario)], capture_output=True, text=True, check=True, timeout=30
    )
    result = json.loads(done.stdout)
    assert result["error"] is None, result["error"]
    return result


def _device_writes(result: dict) -> list[str]:
    return [w for w in result["writes"] if w.startswith("rs_device=")]


def test_a_first_visit_gets_a_random_device_cookie_for_two_years():
    result = _page(protocol="https:", crypto=True)

    device = result["loads"][0]["deviceId"]
    assert ID.match(device)
    assert result["loads"][0]["again"] == device
    assert result["cookies"]["rs_device"] == device
    assert result["storage"]["rs_device"] == device
    assert result["randomValuesCalls"] == 1
    [written] = _device_writes(result)
    assert f"max-age={TWO_YEARS}" in written
    assert "path=/" in written
    assert "SameSite=Lax" in written
    assert "Secure" in written


def test_the_cookie_is_not_secure_on_an_http_page_and_takes_the_configured_domain_only_when_set():
    written = _device_writes(_page(protocol="http:"))[0]
    assert "Secure" not in written
    assert "domain=" not in written
    shared = _device_writes(_page(attrs={"cookie-domain": ".shop.example"}))[0]
    assert "domain=.shop.example" in shared


def test_the_next_visit_keeps_the_same_id_and_does_not_write_the_cookie_again():
    result = _page(loads=2, crypto=True)
    first, second = (load["deviceId"] for load in result["loads"])
    assert first == second
    assert len(_device_writes(result)) == 1


def test_an_existing_device_cookie_is_kept():
    result = _page(cookies={"rs_device": "Kept-Device_id-0123456789"}, storage={})
    assert result["loads"][0]["deviceId"] == "Kept-Device_id-0123456789"
    assert _device_writes(result) == []


def test_when_the_platforms_httponly_cookie_hides_ours_the_id_stays_stable_through_local_storage():
    # A shop on the platform's own domain: the platform's rs_device is HttpOnly, so the snippet can neither read nor
    # overwrite it; its own id lives in localStorage and stays the same from page to page.
    result = _page(httpOnly=["rs_device"], loads=3)
    ids = {load["deviceId"] for load in result["loads"]}
    assert len(ids) == 1
    assert ID.match(ids.pop())


def test_without_crypto_the_id_comes_from_math_random():
    for crypto in (False, "throws"):
        result = _page(crypto=crypto)
        assert ID.match(result["loads"][0]["deviceId"]), crypto


def test_fill_form_adds_the_device_id_next_to_the_referral():
    click = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    result = _page(search=f"?ref=ANNA-10&rs_click={click}", fillForm=True)
    load = result["loads"][0]
    assert load["form"] == {
        "referral_code": "ANNA-10",
        "referral_click_id": click,
        "referral_device_id": load["deviceId"],
        "referral_ga_client_id": "",  # the shop has no Google Analytics tag
    }


def test_fill_form_passes_the_google_analytics_client_id_of_the_shops_ga_cookie():
    result = _page(search="?ref=ANNA-10", cookies={"_ga": "GA1.1.1234567890.1712345678"}, fillForm=True)
    assert result["loads"][0]["form"]["referral_ga_client_id"] == "1234567890.1712345678"
    bogus = _page(search="?ref=ANNA-10", cookies={"_ga": "GA1.1.<script>"}, fillForm=True)
    assert bogus["loads"][0]["form"]["referral_ga_client_id"] == ""


def test_blocked_cookies_and_storage_never_break_the_page():
    result = _page(cookieThrows=True, storage=None, crypto="throws", fillForm=True)
    load = result["loads"][0]
    assert ID.match(load["deviceId"])
    assert load["again"] == load["deviceId"]  # one id for the page, even with nowhere to keep it
    assert load["form"]["referral_device_id"] == load["deviceId"]
    assert load["attribution"] == {"code": None, "click_id": None, "ts": None}


def test_on_a_shopify_storefront_the_referral_goes_into_the_carts_attributes():
    """Shopify copies cart attributes to the order's note_attributes: the orders/paid webhook carries them to us."""
    click = "3f2b8a8e11114a4a9a9a000000000000"
    result = _page(shopify=True, search=f"?ref=ANNA-7K3Q&rs_click={click}", cookies={"_ga": "GA1.1.42.1712345678"})
    attributes = {"_ref": "ANNA-7K3Q", "_rs_click": click, "_ga_client_id": "42.1712345678"}
    assert result["fetches"] == [{"url": "/cart/update.js", "method": "POST", "body": {"attributes": attributes}}]
    assert _page(shopify=True)["fetches"] == []  # nobody referred: the cart is left alone
    assert _page(search="?ref=ANNA-7K3Q")["fetches"] == []  # not a Shopify storefront


# --- GA4 referral_click: the landing page tells POST /t/ga the click's GA client id, once ---------------------------

CLICK = "0123456789abcdef0123456789abcdef"
LANDING = f"?ref=ANNA-7K3Q&rs_click={CLICK}"
GA_COOKIE = {"_ga": "GA1.1.1234567890.1712345678"}
SRC = "https://refer.example.com/static/referral.js"
TOLD = {"click_id": CLICK, "code": "ANNA-7K3Q", "ga_client_id": "1234567890.1712345678"}


def test_the_landing_page_beacons_the_click_and_its_ga_client_id_to_our_origin_once():
    result = _page(search=LANDING, cookies=GA_COOKIE, src=SRC, beacon=True, loads=3)

    assert result["beacons"] == [{"url": "https://refer.example.com/t/ga", "body": TOLD, "type": "string"}]
    assert result["loads"][0]["timers"] == []  # told at once: nothing to try later
    assert result["storage"]["rs_ga_click"] == CLICK


def test_without_sendbeacon_it_is_a_keepalive_fetch_with_a_text_body():
    result = _page(search=LANDING, cookies=GA_COOKIE, src=SRC, fetch=True, attrs={"api-base": "https://r.example/"})

    [sent] = result["fetches"]
    assert (sent["url"], sent["method"], sent["body"]) == ("https://r.example/t/ga", "POST", TOLD)
    assert (sent["keepalive"], sent["mode"], sent["headers"]) == (True, "no-cors", {"Content-Type": "text/plain"})


def test_a_ga_cookie_set_after_the_snippet_is_told_a_little_later_or_on_the_next_page():
    later = _page(search=LANDING, src=SRC, beacon=True, setCookies=GA_COOKIE, runTimers=True)
    assert later["loads"][0]["timers"] == [1500, 5000]
    assert later["beacons"] == [{"url": "https://refer.example.com/t/ga", "body": TOLD, "type": "string"}]

    next_page = _page(search=LANDING, src=SRC, beacon=True, setCookies=GA_COOKIE, loads=2)
    assert [b["body"] for b in next_page["beacons"]] == [TOLD]


def test_nothing_is_sent_without_a_click_a_ga_cookie_our_origin_or_when_turned_off():
    assert _page(search="?ref=ANNA-7K3Q", cookies=GA_COOKIE, src=SRC, beacon=True)["beacons"] == []
    assert _page(search=LANDING, src=SRC, beacon=True)["beacons"] == []
    assert _page(search=LANDING, cookies={"_ga": "GA1.1.<x>"}, src=SRC, beacon=True)["beacons"] == []
    assert _page(search=LANDING, cookies=GA_COOKIE, beacon=True)["beacons"] == []  # no src, no data-api-base
    off = _page(search=LANDING, cookies=GA_COOKIE, src=SRC, beacon=True, attrs={"ga-click": "off"})
    assert off["beacons"] == []
    assert _page(loads=1, src=SRC, beacon=True)["loads"][0]["timers"] == []  # no click: nothing to try later


def test_a_refused_or_throwing_beacon_never_breaks_the_page_and_is_tried_again_later():
    refused = _page(search=LANDING, cookies=GA_COOKIE, src=SRC, beacon=False, loads=2)
    assert len(refused["beacons"]) == 2  # not marked as told: the next page tries again
    assert "rs_ga_click" not in refused["storage"]
    throwing = _page(search=LANDING, cookies=GA_COOKIE, src=SRC, beacon="throws", fetch=True, storage=None)
    assert [f["body"] for f in throwing["fetches"]] == [TOLD]
    assert f"rs_ga_click={CLICK}" in "; ".join(throwing["writes"])
