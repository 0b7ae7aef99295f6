"""Emails through the shop API: a +tag on any provider is the same inbox (a self-referral pays nothing), and an
address no customer could give (or one whose normalised form would not fit its column) is a 400 naming the field,
with nothing written."""

from __future__ import annotations

import pytest

from programs.models import Participant
from rewards.models import Reward, Side
from tests.rewards.helpers import process, rule
from tracking.models import Conversion, Referral

pytestmark = pytest.mark.django_db


def _join(tenant, program, email: str) -> dict:
    response = tenant.api.post(
        "/api/v1/participants", {"program": program.slug, "external_id": "c-42", "email": email}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize(
    ("joined_as", "ordered_as"),
    [
        ("anna.k@outlook.com", "anna.k+1@outlook.com"),
        ("Anna@Proton.me", "anna+shop@proton.me"),
        ("jan@kowalski-family.pl", "Jan+deals@Kowalski-Family.pl"),  # a custom domain
        ("jan+news@kowalski-family.pl", "jan@kowalski-family.pl"),  # the tag on the referrer's side
    ],
)
def test_a_plus_tag_self_referral_on_any_provider_is_rejected_and_pays_nothing(tenant, program, joined_as, ordered_as):
    rule(program, side=Side.REFERRER, hold_days=0)
    rule(program, side=Side.REFEREE, hold_days=0)
    code = _join(tenant, program, joined_as)["code"]

    response = tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "1001", "amount": "129.90", "currency": "PLN", "code": code, "customer": {"email": ordered_as}},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["attributed"], body["status"], body["rejection_reason"]) == (False, "rejected", "self_referral")
    process(tenant, body["id"])
    assert not Reward.objects.for_merchant(tenant.merchant).exists()
    referral = Referral.objects.for_merchant(tenant.merchant).get()
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")


def test_a_plus_tag_sign_up_of_the_referrer_is_a_rejected_self_referral(tenant, program):
    code = _join(tenant, program, "anna.k@outlook.com")["code"]

    response = tenant.api.post(
        "/api/v1/referrals", {"code": code, "customer": {"email": "anna.k+friend@outlook.com"}}, format="json"
    )

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["rejection_reason"]) == ("rejected", "self_referral")


def test_the_address_as_given_is_kept_for_sending_and_its_tag_folds_only_for_comparison(tenant, program):
    first = _join(tenant, program, "Anna+Shop@Outlook.com")
    again = tenant.api.post(
        "/api/v1/participants", {"program": program.slug, "email": "anna@outlook.com"}, format="json"
    )

    assert first["email"] == "Anna+Shop@Outlook.com"
    assert again.status_code == 200  # the same inbox: the same participant
    assert again.json()["id"] == first["id"]
    participant = Participant.objects.for_merchant(tenant.merchant).get()
    assert (participant.email, participant.email_normalized) == ("Anna+Shop@Outlook.com", "anna@outlook.com")


# U+FDFA is one character that NFKC turns into 18 (with spaces): 20 typed characters become a 250+ character domain.
EXPANDING_DOMAIN = "a@" + "\ufdfa" * 14 + ".pl"
REFUSED = [
    EXPANDING_DOMAIN,
    "\ufdfa" * 60 + "@x.pl",
    "a" * 250 + "@x.pl",
    "Anna <anna@example.com>",
    "a@[127.0.0.1]",
]


@pytest.mark.parametrize("email", REFUSED)
def test_an_address_that_cannot_be_stored_or_compared_is_a_400_on_participants(tenant, program, email):
    response = tenant.api.post(
        "/api/v1/participants", {"program": program.slug, "external_id": "c-1", "email": email}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["email"]
    assert not Participant.objects.for_merchant(tenant.merchant).exists()


@pytest.mark.parametrize("email", REFUSED)
def test_an_address_that_cannot_be_stored_or_compared_is_a_400_on_referrals_and_conversions(tenant, referrer, email):
    _participant, code = referrer
    customer = {"external_id": "c-77", "email": email}
    referral = tenant.api.post("/api/v1/referrals", {"code": code.code, "customer": customer}, format="json")
    order = tenant.api.post(
        "/api/v1/conversions",
        {"order_id": "1", "amount": "10.00", "currency": "PLN", "code": code.code, "customer": customer},
        format="json",
    )

    for response in (referral, order):
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == ["customer"]
        assert list(response.json()["error"]["fields"]["customer"]) == ["email"]
    assert not Referral.objects.for_merchant(tenant.merchant).exists()
    assert not Conversion.objects.for_merchant(tenant.merchant).exists()
