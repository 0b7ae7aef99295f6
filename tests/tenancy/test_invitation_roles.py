"""Invitations follow the role rule of the team page: only an owner grants ownership, so only an owner invites an
owner or re-sends / re-invites a pending owner invitation (an admin who could would make a second account owner and
demote the real one)."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from referral_saas.errors import PermissionDeniedError
from referral_saas.tenancy import services
from referral_saas.tenancy.models import Invitation, Membership
from tests.conftest import staff_client
from tests.factories import InvitationFactory, MembershipFactory, MerchantFactory, UserFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/tenancy/invitation/add/"
LIST = "/admin/tenancy/invitation/"


def _teammate(merchant, role, email=None):
    user = UserFactory(email=email) if email else UserFactory()
    MembershipFactory(merchant=merchant, user=user, role=role)
    return user, staff_client(user, merchant)


def test_an_admin_cannot_invite_an_owner_through_the_admin(tenant):
    _user, admin_client = _teammate(tenant.merchant, Membership.Role.ADMIN)

    response = admin_client.post(ADD, {"email": "second.me@x.example", "role": "owner"}, follow=True)

    assert response.status_code == 200
    assert "Only an owner can" in response.content.decode()
    assert not Invitation.objects.for_merchant(tenant.merchant).exists()
    assert mail.outbox == []


def test_an_admin_can_still_invite_an_admin(tenant, django_capture_on_commit_callbacks):
    _user, admin_client = _teammate(tenant.merchant, Membership.Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD, {"email": "helper@x.example", "role": "admin"})
    assert response.status_code == 302
    assert Invitation.objects.for_merchant(tenant.merchant).get().role == Membership.Role.ADMIN
    assert len(mail.outbox) == 1


def test_an_admin_cannot_re_invite_a_pending_owner_invitation_with_another_role(tenant):
    invitation = InvitationFactory(merchant=tenant.merchant, email="future.owner@x.example", role="owner")
    _user, admin_client = _teammate(tenant.merchant, Membership.Role.ADMIN)

    response = admin_client.post(ADD, {"email": "future.owner@x.example", "role": "admin"}, follow=True)

    assert "Only an owner can" in response.content.decode()
    invitation.refresh_from_db()
    assert (invitation.role, invitation.invited_by) == (Membership.Role.OWNER, None)
    assert mail.outbox == []


def test_an_admin_cannot_re_send_an_owner_invitation_but_the_others_go(tenant, django_capture_on_commit_callbacks):
    owner_invite = InvitationFactory(merchant=tenant.merchant, email="future.owner@x.example", role="owner")
    analyst_invite = InvitationFactory(merchant=tenant.merchant, email="looker@x.example", role="analyst")
    old_hash = owner_invite.token_hash
    admin_user, admin_client = _teammate(tenant.merchant, Membership.Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            LIST,
            {"action": "resend", "_selected_action": [owner_invite.pk, analyst_invite.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "Not re-sent to future.owner@x.example: Only an owner can" in response.content.decode()
    owner_invite.refresh_from_db()
    assert (owner_invite.token_hash, owner_invite.invited_by) == (old_hash, None)  # not renewed, nothing sent
    assert [m.to for m in mail.outbox] == [["looker@x.example"]]
    analyst_invite.refresh_from_db()
    assert analyst_invite.invited_by == admin_user


def test_an_owner_can_invite_an_owner_who_joins_as_owner(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.admin.post(ADD, {"email": "partner@x.example", "role": "owner"})
    assert response.status_code == 302
    invitation = Invitation.objects.for_merchant(tenant.merchant).get()
    assert (invitation.role, invitation.invited_by) == (Membership.Role.OWNER, tenant.owner)
    token = re.search(r"/accounts/invitations/([^/]+)/", mail.outbox[-1].body).group(1)

    partner = UserFactory(email="partner@x.example")
    membership = services.invitation_accept(token=token, user=partner)

    assert membership.role == Membership.Role.OWNER


def test_an_owner_can_re_send_an_owner_invitation(tenant, django_capture_on_commit_callbacks):
    invitation = InvitationFactory(merchant=tenant.merchant, email="partner@x.example", role="owner")
    with django_capture_on_commit_callbacks(execute=True):
        tenant.admin.post(LIST, {"action": "resend", "_selected_action": [invitation.pk]})
    assert [m.to for m in mail.outbox] == [["partner@x.example"]]


def test_the_service_refuses_every_caller_not_only_the_admin(tenant):
    admin_user, _client = _teammate(tenant.merchant, Membership.Role.ADMIN)
    analyst_user, _client = _teammate(tenant.merchant, Membership.Role.ANALYST)
    outsider = UserFactory()
    MembershipFactory(merchant=MerchantFactory(), user=outsider, role=Membership.Role.OWNER)

    with pytest.raises(PermissionDeniedError, match="Only an owner"):
        services.invitation_create(merchant=tenant.merchant, email="a@x.example", role="owner", invited_by=admin_user)
    for stranger in (analyst_user, outsider):  # a read-only teammate, an owner of another shop
        with pytest.raises(PermissionDeniedError):
            services.invitation_create(merchant=tenant.merchant, email="b@x.example", role="admin", invited_by=stranger)
    assert not Invitation.objects.for_merchant(tenant.merchant).exists()


def test_an_owner_invitation_sent_by_an_admin_before_the_rule_cannot_be_accepted(tenant):
    admin_user, _client = _teammate(tenant.merchant, Membership.Role.ADMIN)
    token = "old-link-from-an-admin"
    InvitationFactory(
        merchant=tenant.merchant,
        email="second.me@x.example",
        role="owner",
        invited_by=admin_user,
        token_hash=services._sha256(token),
    )
    with pytest.raises(PermissionDeniedError, match="no longer valid"):
        services.invitation_accept(token=token, user=UserFactory(email="second.me@x.example"))
    assert not Membership.objects.for_merchant(tenant.merchant).filter(user__email="second.me@x.example").exists()


def test_the_platform_still_invites_owners_from_a_command(tenant):
    """invited_by None is the platform (seed, ops): it may invite an owner."""
    invitation = services.invitation_create(
        merchant=tenant.merchant, email="founder@x.example", role="owner", invited_by=None
    )
    assert invitation.role == Membership.Role.OWNER
