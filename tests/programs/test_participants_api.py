"""Participants and codes through the shop API: upsert, read, lists, codes and links."""

from __future__ import annotations

import re

import pytest

from programs.models import Participant, ProgramVariant
from tests.factories import ProgramFactory, join
from tracking.models import ReferralCode
from tracking.services import CODE_ALPHABET, code_set_status, code_set_vanity

pytestmark = pytest.mark.django_db


def _join(api, **body):
    return api.post("/api/v1/participants", {"program": "friends", **body}, format="json")


def test_joining_creates_a_participant_with_a_readable_code_and_link(tenant, program, settings):
    response = _join(tenant.api, external_id="c-42", email="Ana@Sklep.PL", name="Łucja Nowak", language="pl")
    assert response.status_code == 201
    body = response.json()
    assert body["program"] == "friends"
    assert (body["external_id"], body["email"], body["name"], body["language"]) == (
        "c-42",
        "Ana@Sklep.PL",
        "Łucja Nowak",
        "pl",
    )
    assert body["status"] == "active"
    assert re.fullmatch(r"LUCJA-[A-Z2-9]{4}", body["code"])
    assert set(body["code"].split("-")[1]) <= set(CODE_ALPHABET)
    assert not set(body["code"].split("-")[1]) & set("0O1IL")
    assert body["link"] == f"{settings.SITE_URL}/r/{body['code']}"


def test_joining_again_by_external_id_or_by_email_returns_the_same_participant(tenant, program):
    first = _join(tenant.api, external_id="c-42", email="ana.b@gmail.com").json()
    by_id = _join(tenant.api, external_id="c-42", name="Ana")
    by_email = _join(tenant.api, email="AnaB+shop@googlemail.com")
    assert (by_id.status_code, by_email.status_code) == (200, 200)
    assert by_id.json()["id"] == by_email.json()["id"] == first["id"]
    assert by_id.json()["code"] == first["code"]
    assert by_id.json()["name"] == "Ana"
    assert Participant.objects.for_merchant(tenant.merchant).count() == 1


def test_a_participant_gets_one_code_per_program(tenant, program):
    ProgramFactory(merchant=tenant.merchant, slug="vip")
    a = _join(tenant.api, external_id="c-42").json()
    b = tenant.api.post("/api/v1/participants", {"program": "vip", "external_id": "c-42"}, format="json").json()
    assert a["id"] == b["id"]
    assert a["code"] != b["code"]
    assert {c["program"] for c in b["codes"]} == {"friends", "vip"}


def test_names_without_latin_letters_get_a_random_code(tenant, program):
    body = _join(tenant.api, email="anna@x.ru", name="Анна").json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", body["code"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "external_id"),
        ({"email": "not-an-email"}, "email"),
        ({"external_id": "x", "language": "de"}, "language"),
        ({"external_id": "x" * 129}, "external_id"),
        ({"external_id": "x", "program": "no-such-program"}, "program"),
        ({"external_id": ["x"]}, "external_id"),
    ],
)
def test_bad_participant_input_is_400(tenant, program, body, field):
    response = tenant.api.post("/api/v1/participants", {"program": "friends", **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Participant.objects.for_merchant(tenant.merchant).count() == 0


def test_an_email_that_belongs_to_someone_else_is_a_conflict(tenant, program):
    _join(tenant.api, external_id="c-1", email="shared@x.example")
    _join(tenant.api, external_id="c-2", email="other@x.example")
    response = _join(tenant.api, external_id="c-2", email="shared@x.example")
    assert response.status_code == 409


def test_read_a_participant_by_external_id_or_by_id(tenant, program):
    created = _join(tenant.api, external_id="42", email="n@x.example").json()
    _join(tenant.api, external_id="other", email="o@x.example")
    assert tenant.api.get("/api/v1/participants/42").json()["id"] == created["id"]  # the shop's id comes first
    assert tenant.api.get(f"/api/v1/participants/{created['id']}?by=id").json()["external_id"] == "42"
    assert tenant.api.get("/api/v1/participants/unknown").status_code == 404


def test_participant_list_is_paginated_and_filtered(tenant, program):
    for i in range(5):
        _join(tenant.api, external_id=f"c-{i}", email=f"p{i}@x.example")
    page = tenant.api.get("/api/v1/participants?limit=2").json()
    assert len(page["results"]) == 2
    assert page["next"]
    rest = tenant.api.get(page["next"]).json()
    assert len(rest["results"]) == 2
    assert {p["external_id"] for p in page["results"]}.isdisjoint({p["external_id"] for p in rest["results"]})
    only = tenant.api.get("/api/v1/participants?email=P3@X.example").json()["results"]
    assert [p["external_id"] for p in only] == ["c-3"]
    assert tenant.api.get("/api/v1/participants?status=weird").status_code == 400


def test_variants_are_assigned_by_weight_and_kept(tenant, program):
    ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name="A", weight=1)
    ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name="B", weight=3)
    names = [_join(tenant.api, external_id=f"v-{i}").json()["codes"][0]["variant"] for i in range(200)]
    assert set(names) == {"A", "B"}
    assert 100 < names.count("B") < 190  # about three quarters
    again = [_join(tenant.api, external_id=f"v-{i}").json()["codes"][0]["variant"] for i in range(20)]
    assert again == names[:20]


def test_code_check_for_the_checkout_form(tenant, referrer):
    _participant, code = referrer
    body = tenant.api.get(f"/api/v1/codes/{code.code.lower()}").json()
    assert body == {
        "code": code.code,
        "valid": True,
        "reason": None,
        "program": "friends",
        "referrer": {"id": code.participant_id, "name": "Anna K."},
        "referee_offer": "10% off your first order",
        "referee_rewards": [],  # the program has no reward rule for the friend
    }
    assert tenant.api.get("/api/v1/codes/NOPE-NOPE").status_code == 404
    code_set_status(code=code, status=ReferralCode.Status.DISABLED)
    disabled = tenant.api.get(f"/api/v1/codes/{code.code}").json()
    assert (disabled["valid"], disabled["reason"]) == (False, "code_disabled")


def test_vanity_codes_are_validated_and_unique_across_merchants(tenant, other_tenant, referrer):
    from referral_saas.errors import ApplicationError

    _participant, code = referrer
    code_set_vanity(code=code, vanity="ANNA-SUMMER")
    assert tenant.api.get("/api/v1/codes/anna-summer").json()["valid"] is True
    foreign_program = ProgramFactory(merchant=other_tenant.merchant)
    _p, foreign = join(foreign_program, email="z@other.example")
    for bad in ("ab", "x" * 33, "has space", "ANNA-SUMMER", "anna_summer"):
        with pytest.raises(ApplicationError):
            code_set_vanity(code=foreign, vanity=bad)


def test_referral_sign_up_validation_and_listing(tenant, referrer):
    _participant, code = referrer
    missing = tenant.api.post("/api/v1/referrals", {"code": code.code, "customer": {}}, format="json")
    assert missing.status_code == 400
    neither = tenant.api.post("/api/v1/referrals", {"customer": {"email": "f@x.example"}}, format="json")
    assert neither.status_code == 400
    created = tenant.api.post(
        "/api/v1/referrals", {"code": code.code, "customer": {"email": "f@x.example"}}, format="json"
    )
    assert created.status_code == 201
    listed = tenant.api.get("/api/v1/referrals?status=signed_up").json()["results"]
    assert [r["id"] for r in listed] == [created.json()["id"]]


def test_a_referred_friend_who_joins_later_remembers_who_brought_them(tenant, referrer):
    _participant, code = referrer
    referral = tenant.api.post(
        "/api/v1/referrals", {"code": code.code, "customer": {"email": "f@x.example"}}, format="json"
    ).json()
    joined = _join(tenant.api, email="f@x.example").json()
    assert joined["referred_by"] == referral["id"]


def test_programs_are_listed_and_read_by_slug(tenant, program):
    listed = tenant.api.get("/api/v1/programs").json()
    assert [p["slug"] for p in listed] == ["friends"]
    detail = tenant.api.get("/api/v1/programs/friends").json()
    assert detail["live"] is True
    assert detail["portal_url"].endswith(f"/p/{tenant.merchant.slug}/friends/")
    assert tenant.api.get("/api/v1/programs/nope").status_code == 404
