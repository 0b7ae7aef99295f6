"""Merchant staff accounts: sign-up creates a shop, email verification, password reset, TOTP two-factor."""

from __future__ import annotations

import re
import time

import pytest
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.core import mail
from django.test import Client

from referral_saas.tenancy.models import Membership, Merchant, User
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Unusual-pass-2026"


def _signup(client: Client, email: str = "founder@newshop.example", **extra):
    data = {
        "email": email,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "shop_name": "New Shop",
        "default_currency": "PLN",
        "default_language": "pl",
        **extra,
    }
    return client.post("/accounts/signup/", data)


def _link(body: str, path_prefix: str) -> str:
    return re.search(rf"https?://[^/\s]+({re.escape(path_prefix)}\S+)", body).group(1)


def test_sign_up_creates_the_shop_and_an_owner_and_asks_to_verify_the_email():
    client = Client()
    response = _signup(client)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="founder@newshop.example")
    merchant = Merchant.objects.get(name="New Shop")
    assert (merchant.slug, merchant.default_currency, merchant.default_language) == ("new-shop", "PLN", "pl")
    assert Membership.objects.for_merchant(merchant).get().user == user
    assert Membership.objects.for_merchant(merchant).get().role == Membership.Role.OWNER
    assert len(mail.outbox) == 1
    assert "/accounts/confirm-email/" in mail.outbox[0].body


def test_an_unverified_owner_cannot_reach_the_admin_until_they_click_the_link():
    client = Client()
    _signup(client)
    login = client.post("/accounts/login/", {"login": "founder@newshop.example", "password": PASSWORD})
    assert login["Location"] == "/accounts/confirm-email/"
    assert client.get("/admin/").status_code == 302

    confirm_path = _link(mail.outbox[-1].body, "/accounts/confirm-email/")
    response = client.post(confirm_path)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_sign_up_rejects_a_bad_currency_or_missing_shop_name_and_writes_nothing():
    client = Client()
    response = _signup(client, default_currency="XXX", shop_name="")
    assert response.status_code == 200
    assert b"shop_name" in response.content or b"Shop name" in response.content
    assert not User.objects.filter(email="founder@newshop.example").exists()
    assert not Merchant.objects.exists()


def test_password_reset_sends_a_working_link():
    user = UserFactory(email="forgetful@shop.example")
    MembershipFactory(user=user)
    client = Client()
    client.post("/accounts/password/reset/", {"email": "forgetful@shop.example"})
    assert len(mail.outbox) == 1
    reset_path = _link(mail.outbox[0].body, "/accounts/password/reset/key/")
    form_page = client.get(reset_path, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else reset_path
    done = client.post(action, {"password1": "Brand-new-pass-77", "password2": "Brand-new-pass-77"})
    assert done.status_code == 302
    assert Client().login(email="forgetful@shop.example", password="Brand-new-pass-77")


def _totp_now(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_totp_two_factor_is_asked_at_the_next_login():
    user = UserFactory(email="careful@shop.example", password=PASSWORD)
    MembershipFactory(user=user)
    client = Client()
    assert client.post("/accounts/login/", {"login": user.email, "password": PASSWORD}).status_code == 302
    # Turning on 2FA asks for the password once more.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    activated = client.post("/accounts/2fa/totp/activate/", {"code": _totp_now(secret)})
    assert activated.status_code == 302
    client.post("/accounts/logout/")

    fresh = Client()
    login = fresh.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert login["Location"] == "/accounts/2fa/authenticate/"
    assert fresh.get("/admin/").status_code == 302  # not signed in yet
    wrong = fresh.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200
    done = fresh.post("/accounts/2fa/authenticate/", {"code": _totp_now(secret)})
    assert done.status_code == 302
    assert fresh.get("/admin/").status_code == 200


LONG_EMAIL = "b" * 250 + "@x.com"  # 256 characters: the user table holds 254


@pytest.mark.parametrize("email", [LONG_EMAIL, "a@[127.0.0.1]", "a@localhost", "Anna <anna@shop.example>"])
def test_sign_up_with_an_address_we_cannot_keep_is_a_field_error_and_stores_nothing(email):
    for _attempt in range(2):  # the second one was a database error (the first stored a cut-off address)
        response = _signup(Client(), email=email)
        assert response.status_code == 200
        assert b"Enter a valid email address." in response.content
    assert not User.objects.exists()
    assert not Merchant.objects.exists()


def test_an_invited_person_signing_up_with_an_over_long_address_gets_a_field_error(
    tenant, django_capture_on_commit_callbacks
):
    from referral_saas.tenancy import services
    from referral_saas.tenancy.models import Invitation

    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(
            merchant=tenant.merchant, email="invited@shop.example", role="admin", invited_by=None
        )
    token = re.search(r"/accounts/invitations/([^/]+)/", mail.outbox[-1].body).group(1)
    client = Client()
    assert client.get(f"/accounts/invitations/{token}/").status_code == 200
    response = _signup(client, email=LONG_EMAIL, shop_name="")
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert not User.objects.exclude(pk=tenant.owner.pk).exists()
    assert Invitation.objects.for_merchant(tenant.merchant).get().accepted_at is None


def test_adding_an_over_long_address_to_an_account_is_a_field_error():
    from allauth.account.models import EmailAddress

    user = UserFactory(email="owner@shop.example")
    MembershipFactory(user=user)
    client = Client()
    client.force_login(user)
    response = client.post("/accounts/email/", {"action_add": "", "email": LONG_EMAIL})
    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content
    assert not EmailAddress.objects.filter(user=user).exclude(email="owner@shop.example").exists()


def test_a_password_reset_for_an_over_long_address_is_a_field_error():
    response = Client().post("/accounts/password/reset/", {"email": LONG_EMAIL})
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_with_one_address_at_the_same_moment_make_one_account_and_one_form_error():
    """Both pass the form's "already registered?" look before either is stored (held there by a barrier)."""
    import threading
    from unittest import mock

    from referral_saas.tenancy.adapters import AccountAdapter
    from tests.threads import run_together

    both_checked = threading.Barrier(2)
    save_user = AccountAdapter.save_user

    def save_user_after_both_checked(self, request, user, form, commit=True):
        both_checked.wait(30)
        return save_user(self, request, user, form, commit)

    with mock.patch.object(AccountAdapter, "save_user", save_user_after_both_checked):
        responses, errors = run_together(2, lambda i: _signup(Client(), email="twice@newshop.example"))
    assert errors == []
    assert sorted(r.status_code for r in responses) == [200, 302]
    refused = next(r for r in responses if r.status_code == 200)
    assert b"A user is already registered with this email address." in refused.content
    assert User.objects.filter(email="twice@newshop.example").count() == 1
    assert Merchant.objects.count() == 1  # the refused sign-up left no shop behind
