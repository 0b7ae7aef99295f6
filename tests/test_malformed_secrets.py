"""Signatures, tokens and keys that arrive malformed (non-ASCII, lone surrogates, digits of other scripts, absurd
lengths) get the same refusal as a wrong one, never a 500: `hmac.compare_digest` raises TypeError for a non-ASCII
str, and int() of a huge or non-ASCII "number" raises ValueError."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import pytest
from django.test import Client

from portal.services import portal_sso_url
from programs.models import Participant
from referral_saas.crypto import same_secret

pytestmark = pytest.mark.django_db

MALFORMED = [
    "é",
    "é" * 64,
    "\uff41" * 64,  # fullwidth letters: .lower() and isalnum() accept them
    "0" * 63 + "é",
    "\u0660" * 64,  # Arabic-Indic zeros
    "x" * 5000,
    " ",
]


def _sso_path(program, **override) -> str:
    url = portal_sso_url(program=program, external_id="c-99", email="vip@shop.example")
    query = dict(parse_qsl(url.split("?", 1)[1]))
    query.update(override)
    return f"/en/p/{program.merchant.slug}/{program.slug}/sso/?{urlencode(query)}"


@pytest.mark.parametrize("sig", MALFORMED)
def test_a_malformed_shop_signature_is_refused_like_a_wrong_one(program, sig):
    assert Client().get(_sso_path(program)).status_code == 302  # the helper builds a working link
    Participant.objects.for_merchant(program.merchant).all().delete()
    wrong = Client().get(_sso_path(program, sig="0" * 64))
    response = Client().get(_sso_path(program, sig=sig))

    assert response.status_code == wrong.status_code == 403
    assert b"not valid" in response.content
    assert not Participant.objects.for_merchant(program.merchant).filter(external_id="c-99").exists()


@pytest.mark.parametrize("ts", ["²", "\u0661" * 10, "9" * 5000, "-1", "1e9"])
def test_a_malformed_shop_timestamp_is_refused(program, ts):
    response = Client().get(_sso_path(program, ts=ts))
    assert response.status_code == 403
    assert not Participant.objects.for_merchant(program.merchant).filter(external_id="c-99").exists()


@pytest.mark.parametrize("ts", ["²", "9" * 5000])
def test_a_correctly_signed_but_malformed_timestamp_is_refused(program, ts):
    """A shop's own bug (or a leaked secret) signing nonsense: still a refusal, not int() raising."""
    from portal.services import _sso_signature

    sig = _sso_signature(program.merchant.portal_secret, program, "c-99", "vip@shop.example", ts)
    response = Client().get(_sso_path(program, ts=ts, sig=sig))
    assert response.status_code == 403
    assert not Participant.objects.for_merchant(program.merchant).filter(external_id="c-99").exists()


def test_a_well_signed_link_with_a_non_ascii_customer_still_signs_in(program):
    # (A non-ASCII local part, "zoë@...", is no address the API takes: such a link is refused like a bad one.)
    url = portal_sso_url(program=program, external_id="klient-łódź", email="zoe@łódź.example", ts=int(time.time()))
    response = Client().get("/" + url.split("/", 3)[3], HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert Participant.objects.for_merchant(program.merchant).filter(external_id="klient-łódź").exists()


@pytest.mark.parametrize("token", ["é", "rk_live_" + "é" * 40, "rk_live_\u0660" * 5, "\uff41" * 48, "x" * 5000])
def test_a_malformed_api_key_is_a_401_like_a_wrong_one(tenant, token):
    from rest_framework.test import APIClient

    api = APIClient()
    # A header value is latin-1 on the wire; WSGI hands it to Django decoded as latin-1.
    api.credentials(HTTP_AUTHORIZATION="Bearer " + token.encode("utf-8").decode("latin-1"))
    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize("token", ["é", "é" * 40, "a:b:é", "x" * 5000])
def test_malformed_portal_and_team_links_are_refused(program, token):
    base = f"/en/p/{program.merchant.slug}/{program.slug}/"
    assert 400 <= Client().post(base + f"sign-in/{token}/").status_code < 500
    assert Client().get(f"/accounts/invitations/{token}/").status_code == 404


def test_a_malformed_redeem_token_redeems_nothing(client, program, referrer):
    from tests.portal.test_portal import _join_and_sign_in

    _join_and_sign_in(client, program, email="zoe@example.pl")
    base = f"/en/p/{program.merchant.slug}/{program.slug}/"
    for token in ("é", "é:" * 30, "\uff41:\uff42:\uff43"):
        response = client.post(base + "redeem/", {"item": "1", "token": token})
        assert response.status_code < 500


@pytest.mark.parametrize(
    ("expected", "given", "equal"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("abc", "é", False),
        ("é", "é", True),
        ("abc", "\ud800", False),
        ("abc", None, False),
        ("abc", 123, False),
        (b"abc", "abc", True),
    ],
)
def test_same_secret_never_raises(expected, given, equal):
    assert same_secret(expected, given) is equal
