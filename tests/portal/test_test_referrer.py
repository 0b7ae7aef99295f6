"""The hosted portal in test mode (issue 18, item 3): the shop's staff open their program's portal as its test
referrer, whose code and link work with the shop's test API key, so the loop can be tried end to end without live
data. Nobody else can."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from referral_saas.tenancy.models import ApiKey, Membership
from tests.conftest import staff_client
from tests.factories import MembershipFactory, UserFactory, make_api_key, reward_rule
from tracking.models import Conversion, ReferralCode
from tracking.services import TEST_REFERRER_EXTERNAL_ID

pytestmark = pytest.mark.django_db


def _open(client: Client, program):
    return client.post(f"/en/p/{program.merchant.slug}/{program.slug}/test-referrer/")


def test_the_owner_opens_the_portal_as_the_test_referrer_whose_code_works_with_the_test_key(tenant, program):
    reward_rule(program, name="Credit", kind="store_credit", value_type="fixed", value=Decimal("10"), max_value=None)
    install = tenant.admin.get(f"/admin/integrations/connection/install/{program.pk}/")
    assert "Open the portal as the test referrer" in install.content.decode()

    opened = _open(tenant.admin, program)
    assert opened.status_code == 302
    assert opened["Location"] == f"/en/p/{tenant.merchant.slug}/{program.slug}/"
    page = html.unescape(tenant.admin.get(opened["Location"]).content.decode())
    assert "Test mode." in page
    code = ReferralCode.objects.for_merchant(tenant.merchant).get(participant__external_id=TEST_REFERRER_EXTERNAL_ID)
    assert code.livemode is False
    assert code.code in page

    _key, secret = make_api_key(tenant.merchant, mode=ApiKey.Mode.TEST)
    test_api = APIClient()
    test_api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert test_api.get(f"/api/v1/codes/{code.code}").status_code == 200
    assert tenant.api.get(f"/api/v1/codes/{code.code}").status_code == 404  # the live key: a test code is unknown
    order = test_api.post(
        "/api/v1/conversions",
        {"order_id": "t-1", "amount": "80.00", "currency": "PLN", "code": code.code,
         "customer": {"external_id": "buyer-1", "email": "buyer@example.com"}},
        format="json",
    )  # fmt: skip
    assert order.status_code == 201, order.content
    stored = Conversion.objects.for_merchant(tenant.merchant).get(order_id="t-1")
    assert stored.livemode is False
    assert stored.referral.referrer.external_id == TEST_REFERRER_EXTERNAL_ID

    again = _open(tenant.admin, program)  # the same test referrer, not a second one
    assert again.status_code == 302
    assert ReferralCode.objects.for_merchant(tenant.merchant).filter(livemode=False).count() == 1


def test_a_customer_an_analyst_or_another_shops_staff_cannot(tenant, other_tenant, program):
    analyst = UserFactory(email="analyst@alpha.example")
    MembershipFactory(merchant=tenant.merchant, user=analyst, role=Membership.Role.ANALYST)
    for client in (Client(), staff_client(analyst, tenant.merchant), other_tenant.admin):
        assert _open(client, program).status_code == 403
    assert not ReferralCode.objects.for_merchant(tenant.merchant).filter(livemode=False).exists()


def test_a_get_does_nothing(tenant, program):
    assert tenant.admin.get(f"/en/p/{tenant.merchant.slug}/{program.slug}/test-referrer/").status_code == 405
    assert not ReferralCode.objects.for_merchant(tenant.merchant).filter(livemode=False).exists()
