"""referral.js carries the referral to Stripe Checkout (client_reference_id on Payment Links, pricing tables and buy
buttons), where the Stripe connection reads it; run in node in the stand-in page of tests/tracking/snippet_page.js."""

from __future__ import annotations

import pytest

from tests.tracking.test_snippet import NODE, _page

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

CLICK = "0123456789abcdef0123456789abcdef"
ELEMENTS = [
    {"tag": "a", "attrs": {"href": "https://buy.stripe.com/test_8wM3cK"}},
    {"tag": "a", "attrs": {"href": "https://buy.stripe.com/test_9xN?prefilled_email=a%40b.pl#pay"}},
    {"tag": "a", "attrs": {"href": "https://buy.stripe.com/test_1aB?client_reference_id=merchants-own"}},
    {"tag": "a", "attrs": {"href": "https://shop.example.pl/cart"}},
    {"tag": "stripe-pricing-table", "attrs": {"pricing-table-id": "prctbl_1"}},
    {"tag": "stripe-buy-button", "attrs": {"buy-button-id": "buy_btn_1", "client-reference-id": "set-by-merchant"}},
]


def _hrefs(result) -> list[str]:
    return [e["attrs"].get("href") or e["attrs"].get("client-reference-id") for e in result["elements"]]


def test_a_referred_visitors_stripe_links_and_widgets_carry_the_click_id():
    result = _page(search=f"?rs_click={CLICK}", elements=ELEMENTS, readyState="loading")
    assert _hrefs(result) == [
        f"https://buy.stripe.com/test_8wM3cK?client_reference_id={CLICK}",
        f"https://buy.stripe.com/test_9xN?prefilled_email=a%40b.pl&client_reference_id={CLICK}#pay",
        "https://buy.stripe.com/test_1aB?client_reference_id=merchants-own",  # the merchant's own stays
        "https://shop.example.pl/cart",
        CLICK,
        "set-by-merchant",
    ]


def test_the_code_when_there_is_no_click_and_nothing_for_a_visitor_who_was_not_referred():
    referred = _page(search="?ref=ANNA-8P8J", elements=ELEMENTS)
    assert _hrefs(referred)[0] == "https://buy.stripe.com/test_8wM3cK?client_reference_id=ANNA-8P8J"
    plain = _page(elements=ELEMENTS)
    assert _hrefs(plain)[0] == "https://buy.stripe.com/test_8wM3cK"
    off = _page(search="?ref=ANNA-8P8J", elements=ELEMENTS, attrs={"stripe": "off"})
    assert _hrefs(off)[0] == "https://buy.stripe.com/test_8wM3cK"
