"""Where referrers are seen: signing in to the portal and the shop's participant API leave a sighting, which a
friend's order from the same place then matches."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from fraud.models import Sighting
from fraud.services import conversion_assess, sighting_record
from portal.services import portal_sso_url
from programs.models import Participant
from referral_saas.devices import DEVICE_COOKIE
from tracking.clicks import hash_ip
from tracking.models import ReferralCode

pytestmark = pytest.mark.django_db

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148"


def _sightings(merchant, participant=None):
    scope = Sighting.objects.for_merchant(merchant)
    return scope.filter(participant=participant) if participant else scope


def test_signing_in_to_the_portal_records_where_the_referrer_is(client, tenant, program):
    base = f"/en/p/{tenant.merchant.slug}/{program.slug}/"
    client.post(base + "join/", {"email": "kasia@example.pl", "name": "Kasia", "accept_terms": "on"})
    link = re.search(r"https?://[^/\s]+(/\S+/sign-in/\S+/)", mail.outbox[-1].body).group(1)
    client.cookies[DEVICE_COOKIE] = "device-abc"

    assert client.post(link, REMOTE_ADDR="198.51.100.23", HTTP_USER_AGENT=PHONE).status_code == 302

    kasia = Participant.objects.for_merchant(tenant.merchant).get(email="kasia@example.pl")
    sighting = _sightings(tenant.merchant, kasia).get()
    assert sighting.ip_hash == hash_ip("198.51.100.23")
    assert (sighting.user_agent, sighting.device_id) == (PHONE, "device-abc")


def test_a_shop_signed_portal_link_records_a_sighting_too(tenant, program):
    url = "/" + portal_sso_url(program=program, external_id="c-99", email="vip@shop.example").split("/", 3)[3]

    assert Client().get(url, REMOTE_ADDR="198.51.100.24", HTTP_USER_AGENT=PHONE).status_code == 302

    vip = Participant.objects.for_merchant(tenant.merchant).get(external_id="c-99")
    assert _sightings(tenant.merchant, vip).get().ip_hash == hash_ip("198.51.100.24")


def test_a_first_portal_visit_gets_a_device_cookie_that_later_visits_keep(client, tenant, program):
    home = f"/en/p/{tenant.merchant.slug}/{program.slug}/"

    first = client.get(home)

    cookie = first.cookies[DEVICE_COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cookie.value)
    assert cookie["max-age"] == 2 * 365 * 24 * 3600
    assert (cookie["path"], cookie["samesite"], cookie["httponly"]) == ("/", "Lax", True)
    assert not cookie["secure"]  # plain http here (tests run with SESSION_COOKIE_SECURE off)
    for _visit in range(2):
        assert DEVICE_COOKIE not in client.get(home).cookies  # not reset while the browser has one
    assert client.cookies[DEVICE_COOKIE].value == cookie.value


def test_the_device_cookie_is_secure_over_https_and_a_malformed_one_is_replaced(client, tenant, program):
    home = f"/en/p/{tenant.merchant.slug}/{program.slug}/"
    client.cookies[DEVICE_COOKIE] = "<script>"

    cookie = client.get(home, secure=True).cookies[DEVICE_COOKIE]

    assert cookie["secure"] is True
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cookie.value)


def test_the_shared_portal_address_gives_the_device_cookie_with_its_language_redirect(client, tenant, program):
    response = client.get(f"/p/{tenant.merchant.slug}/{program.slug}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response.cookies[DEVICE_COOKIE]["httponly"] is True


def test_signing_in_on_the_first_visit_records_the_device_cookie_that_visit_is_given(tenant, program):
    url = "/" + portal_sso_url(program=program, external_id="c-99", email="vip@shop.example").split("/", 3)[3]

    response = Client().get(url, REMOTE_ADDR="198.51.100.24", HTTP_USER_AGENT=PHONE)

    given = response.cookies[DEVICE_COOKIE].value
    vip = Participant.objects.for_merchant(tenant.merchant).get(external_id="c-99")
    assert _sightings(tenant.merchant, vip).get().device_id == given


def test_the_participant_api_records_the_ip_user_agent_and_device_it_is_given(tenant, program):
    body = {"program": "friends", "external_id": "c-42", "email": "anna@example.pl", "name": "Anna"}
    extra = {"ip": "203.0.113.9", "user_agent": PHONE, "device_id": "shop-device-1"}

    response = tenant.api.post("/api/v1/participants", {**body, **extra}, format="json")

    assert response.status_code == 201, response.content
    anna = Participant.objects.for_merchant(tenant.merchant).get(external_id="c-42")
    sighting = _sightings(tenant.merchant, anna).get()
    assert sighting.ip_hash == hash_ip("203.0.113.9")
    assert (sighting.user_agent, sighting.device_id) == (PHONE, "shop-device-1")
    assert "203.0.113.9" not in str(Sighting.objects.for_merchant(tenant.merchant).values_list())  # hashed only


def test_the_participant_api_without_ip_or_device_records_nothing(tenant, program):
    response = tenant.api.post("/api/v1/participants", {"program": "friends", "external_id": "c-1"}, format="json")
    assert response.status_code == 201
    assert not _sightings(tenant.merchant).exists()


def test_the_participant_api_refuses_a_malformed_ip(tenant, program):
    body = {"program": "friends", "external_id": "c-1", "ip": "999.0.0.1"}
    response = tenant.api.post("/api/v1/participants", body, format="json")
    assert response.status_code == 400
    assert "ip" in response.json()["error"]["fields"]
    assert not Participant.objects.for_merchant(tenant.merchant).exists()


def test_the_same_place_again_is_one_sighting_seen_later(tenant, referrer):
    anna = referrer[0]
    first = sighting_record(merchant=tenant.merchant, participant=anna, ip="203.0.113.9", user_agent=PHONE)
    sighting_record(merchant=tenant.merchant, participant=anna, ip="203.0.113.9", user_agent=PHONE)
    sighting_record(merchant=tenant.merchant, participant=anna, ip="203.0.113.10", user_agent=PHONE)

    rows = list(_sightings(tenant.merchant, anna).order_by("first_seen_at"))
    assert len(rows) == 2
    assert rows[0].seen_at >= first.seen_at


def test_a_sighting_is_only_for_the_participants_own_merchant(tenant, other_tenant, referrer):
    from referral_saas.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        sighting_record(merchant=other_tenant.merchant, participant=referrer[0], ip="203.0.113.9")
    assert not Sighting.all_merchants.exists()


def test_a_friend_ordering_from_where_the_referrer_joined_is_flagged(tenant, program, place_order):
    tenant.api.post(
        "/api/v1/participants",
        {"program": "friends", "external_id": "c-42", "name": "Anna", "ip": "203.0.113.9", "device_id": "d-1"},
        format="json",
    )
    code = ReferralCode.objects.for_merchant(tenant.merchant).get(participant__external_id="c-42")

    order = place_order(code=code.code, ip="203.0.113.9", device_id="d-1")

    names = {s["name"] for s in conversion_assess(conversion=order).signals}
    assert names == {"shared_ip", "shared_device"}
