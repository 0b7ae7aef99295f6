"""The merchant admin as staff use it: roles, team, invitations, API keys, switching shops, and /ops/."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from referral_saas.tenancy.models import ApiKey, Invitation, Membership
from tests.conftest import staff_client
from tests.factories import MembershipFactory, MerchantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _add_teammate(merchant, role, email=None):
    user = UserFactory(email=email) if email else UserFactory()
    membership = MembershipFactory(merchant=merchant, user=user, role=role)
    return membership, staff_client(user, merchant)


def test_admin_asks_anonymous_visitors_to_log_in():
    response = Client().get("/admin/tenancy/apikey/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/?next=%2Fadmin%2Ftenancy%2Fapikey%2F"
    assert b"Sign In" in response.content


def test_dashboard_shows_empty_kpi_cards_and_next_steps(tenant):
    response = tenant.admin.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alpha Shop: dashboard" in html
    assert html.count('class="kpi-card"') >= 6
    assert "New customers from referrals" in html
    assert "Create an API key" in html


def test_signed_in_user_without_a_shop_is_offered_to_create_one():
    user = UserFactory()
    client = staff_client(user)
    response = client.get("/admin/")
    assert response.status_code in (302, 403)
    page = client.get("/admin/login/")
    assert page.status_code == 403
    assert b"Create a shop" in page.content
    created = client.post(
        "/accounts/new-shop/", {"shop_name": "Fresh", "default_currency": "EUR", "default_language": "ro"}
    )
    assert created.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_analyst_can_look_but_not_change(tenant):
    _m, analyst = _add_teammate(tenant.merchant, Membership.Role.ANALYST)
    assert analyst.get("/admin/tenancy/apikey/").status_code == 200
    assert analyst.get(f"/admin/tenancy/apikey/{tenant.api_key.pk}/change/").status_code == 200
    assert analyst.get("/admin/tenancy/apikey/add/").status_code == 403
    response = analyst.post(f"/admin/tenancy/apikey/{tenant.api_key.pk}/change/", {"name": "renamed"})
    assert response.status_code == 403
    assert analyst.post("/admin/tenancy/invitation/add/", {"email": "x@y.example", "role": "admin"}).status_code == 403
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.name != "renamed"


def test_owner_creates_an_api_key_that_is_shown_once_and_works(tenant):
    response = tenant.admin.post("/admin/tenancy/apikey/add/", {"name": "Till 2", "mode": "test"}, follow=True)
    assert response.status_code == 200
    key = re.search(r"(rk_test_[A-Za-z0-9]{40})", response.content.decode()).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/me").json()["mode"] == "test"
    row = ApiKey.objects.for_merchant(tenant.merchant).get(name="Till 2")
    assert row.created_by == tenant.owner
    assert key not in tenant.admin.get(f"/admin/tenancy/apikey/{row.pk}/change/").content.decode()


def test_revoking_a_key_in_the_admin_makes_the_api_refuse_it(tenant):
    assert tenant.api.get("/api/v1/me").status_code == 200
    tenant.admin.post(
        "/admin/tenancy/apikey/", {"action": "revoke", "_selected_action": [tenant.api_key.pk]}, follow=True
    )
    assert tenant.api.get("/api/v1/me").status_code == 401


def test_invite_a_teammate_who_signs_up_from_the_link_and_joins_as_analyst(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.admin.post(
            "/admin/tenancy/invitation/add/",
            {"email": "New.Person@Example.com", "role": "analyst"},
            follow=True,
        )
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["new.person@example.com"]
    assert "Alpha Shop" in email.subject
    path = re.search(r"https?://[^/\s]+(/accounts/invitations/\S+/)", email.body).group(1)

    invitee = Client()
    landing = invitee.get(path)
    assert landing.status_code == 200
    assert b"Join Alpha Shop" in landing.content
    signup = invitee.post(
        "/accounts/signup/",
        {
            "email": "new.person@example.com",
            "password1": "Unusual-pass-2026",
            "password2": "Unusual-pass-2026",
        },
    )
    assert signup.status_code == 302
    membership = Membership.objects.for_merchant(tenant.merchant).get(user__email="new.person@example.com")
    assert membership.role == Membership.Role.ANALYST
    assert Membership.all_merchants.filter(user__email="new.person@example.com").count() == 1  # no shop of their own
    assert Invitation.objects.for_merchant(tenant.merchant).get().accepted_at is not None


def test_an_existing_user_accepts_an_invitation_while_signed_in(tenant, django_capture_on_commit_callbacks):
    from referral_saas.tenancy import services

    other_shop = MerchantFactory()
    _membership, client = _add_teammate(other_shop, Membership.Role.OWNER, email="multi@shop.example")
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(merchant=tenant.merchant, email="multi@shop.example", role="admin", invited_by=None)
    token = re.search(r"/accounts/invitations/([^/]+)/", mail.outbox[-1].body).group(1)
    response = client.post(f"/accounts/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.for_merchant(tenant.merchant).filter(user__email="multi@shop.example").exists()
    # The second accept of the same link changes nothing.
    assert client.post(f"/accounts/invitations/{token}/").status_code == 302
    assert Membership.objects.for_merchant(tenant.merchant).filter(user__email="multi@shop.example").count() == 1


def test_someone_removed_from_the_team_cannot_rejoin_with_their_old_link(tenant, django_capture_on_commit_callbacks):
    from referral_saas.tenancy import services

    _other, client = _add_teammate(MerchantFactory(), Membership.Role.OWNER, email="ex@shop.example")
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(merchant=tenant.merchant, email="ex@shop.example", role="admin", invited_by=None)
    token = re.search(r"/accounts/invitations/([^/]+)/", mail.outbox[-1].body).group(1)
    assert client.post(f"/accounts/invitations/{token}/").status_code == 302
    former = Membership.objects.for_merchant(tenant.merchant).get(user__email="ex@shop.example")
    owner = Membership.objects.for_merchant(tenant.merchant).get(user=tenant.owner)
    services.membership_remove(membership=former, actor=owner)

    response = client.post(f"/accounts/invitations/{token}/")

    assert response.status_code == 422
    assert b"already used" in response.content
    assert not Membership.objects.for_merchant(tenant.merchant).filter(user__email="ex@shop.example").exists()


def test_an_invitation_that_expires_during_sign_up_leaves_a_shop_of_their_own_and_says_why(
    tenant, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from referral_saas.tenancy import services

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(merchant=tenant.merchant, email="late@x.example", role="admin", invited_by=None)
    path = re.search(r"https?://[^/\s]+(/accounts/invitations/\S+/)", mail.outbox[-1].body).group(1)
    invitee = Client()
    assert invitee.get(path).status_code == 200
    Invitation.objects.for_merchant(tenant.merchant).update(expires_at=timezone.now())

    signup = invitee.post(
        "/accounts/signup/",
        {"email": "late@x.example", "password1": "Unusual-pass-2026", "password2": "Unusual-pass-2026"},
        follow=True,
    )

    assert signup.status_code == 200
    assert b"expired" in signup.content
    assert not Membership.objects.for_merchant(tenant.merchant).filter(user__email="late@x.example").exists()
    assert Membership.all_merchants.filter(user__email="late@x.example", role="owner").count() == 1


def test_an_invitation_cannot_be_accepted_by_someone_else(tenant, django_capture_on_commit_callbacks):
    from referral_saas.tenancy import services

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(merchant=tenant.merchant, email="right@x.example", role="admin", invited_by=None)
    token = re.search(r"/accounts/invitations/([^/]+)/", mail.outbox[-1].body).group(1)
    _m, wrong = _add_teammate(MerchantFactory(), Membership.Role.OWNER, email="wrong@x.example")
    response = wrong.post(f"/accounts/invitations/{token}/")
    assert response.status_code == 403
    assert not Membership.objects.for_merchant(tenant.merchant).filter(user__email="wrong@x.example").exists()


def test_unknown_invitation_link_is_a_friendly_404():
    response = Client().get("/accounts/invitations/not-a-token/")
    assert response.status_code == 404
    assert b"not valid" in response.content


def test_owner_removes_a_teammate_but_never_the_last_owner(tenant):
    analyst, _c = _add_teammate(tenant.merchant, Membership.Role.ANALYST)
    response = tenant.admin.post(f"/admin/tenancy/membership/{analyst.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.for_merchant(tenant.merchant).filter(pk=analyst.pk).exists()

    owner = Membership.objects.for_merchant(tenant.merchant).get(user=tenant.owner)
    response = tenant.admin.post(f"/admin/tenancy/membership/{owner.pk}/delete/", {"post": "yes"}, follow=True)
    assert b"at least one owner" in response.content
    assert Membership.objects.for_merchant(tenant.merchant).filter(pk=owner.pk).exists()


def test_only_an_owner_can_make_someone_owner(tenant):
    _admin_member, admin_client = _add_teammate(tenant.merchant, Membership.Role.ADMIN)
    analyst, _c = _add_teammate(tenant.merchant, Membership.Role.ANALYST)
    response = admin_client.post(f"/admin/tenancy/membership/{analyst.pk}/change/", {"role": "owner"})
    assert response.status_code == 200  # the form again, with the error
    assert b"Only an owner" in response.content
    analyst.refresh_from_db()
    assert analyst.role == Membership.Role.ANALYST

    response = tenant.admin.post(f"/admin/tenancy/membership/{analyst.pk}/change/", {"role": "owner"})
    assert response.status_code == 302
    analyst.refresh_from_db()
    assert analyst.role == Membership.Role.OWNER


def test_a_user_of_two_shops_switches_between_them(tenant):
    second = MerchantFactory(name="Second Shop")
    MembershipFactory(merchant=second, user=tenant.owner, role=Membership.Role.ANALYST)
    page = tenant.admin.get("/admin/")
    assert b"Second Shop" in page.content  # in the switcher
    response = tenant.admin.post("/admin/switch-merchant/", {"merchant_id": second.pk})
    assert response.status_code == 302
    assert b"Second Shop: dashboard" in tenant.admin.get("/admin/").content
    # A shop the user is not on cannot be switched to.
    stranger = MerchantFactory()
    assert tenant.admin.post("/admin/switch-merchant/", {"merchant_id": stranger.pk}).status_code == 404
    assert tenant.admin.post("/admin/switch-merchant/", {"merchant_id": "x"}).status_code == 404


def test_shop_settings_page_edits_only_the_current_shop(tenant, other_tenant):
    url = f"/admin/tenancy/shopsettings/{tenant.merchant.pk}/change/"
    response = tenant.admin.post(
        url,
        {
            "name": "Alpha Renamed",
            "default_currency": "EUR",
            "timezone": "Europe/Bucharest",
            "default_language": "ro",
        },
    )
    assert response.status_code == 302
    tenant.merchant.refresh_from_db()
    assert (tenant.merchant.name, tenant.merchant.default_currency) == ("Alpha Renamed", "EUR")
    bad = tenant.admin.post(
        url, {"name": "X", "default_currency": "EUR", "timezone": "Mars/Olympus", "default_language": "ro"}
    )
    assert bad.status_code == 200
    assert b"not a known time zone" in bad.content


def test_ops_is_for_superusers_only(tenant, other_tenant):
    refused = tenant.admin.get("/ops/tenancy/merchant/", follow=True)
    assert refused.status_code == 403
    assert b"Beta Shop" not in refused.content
    operator = UserFactory(email="ops@platform.example", is_superuser=True, is_staff=True)
    ops = staff_client(operator)
    response = ops.get("/ops/tenancy/merchant/")
    assert response.status_code == 200
    assert b"Alpha Shop" in response.content
    assert b"Beta Shop" in response.content
