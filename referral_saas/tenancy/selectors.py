"""Reads for tenancy: which merchant a signed-in person is working in."""

from __future__ import annotations

from referral_saas.tenancy.models import Membership, User

SESSION_MERCHANT_KEY = "merchant_id"


def memberships_for_user(*, user: User) -> list[Membership]:
    """Every shop this person belongs to (cross-tenant by design: it is their own list)."""
    return list(Membership.all_merchants.select_related("merchant").filter(user=user).order_by("merchant__name"))


def membership_for_session(*, user: User, session) -> Membership | None:
    """The membership the session has chosen, else the user's first shop; None without any."""
    memberships = memberships_for_user(user=user)
    chosen = session.get(SESSION_MERCHANT_KEY)
    for membership in memberships:
        if membership.merchant_id == chosen:
            return membership
    return memberships[0] if memberships else None
