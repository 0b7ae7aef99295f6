"""allauth hooks: the signup form needs the request (to see a pending invitation); staff addresses follow the one
address rule."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from referral_saas.emails import validate_customer_email
from referral_saas.tenancy.forms import PENDING_INVITATION_KEY
from referral_saas.tenancy.services import invitation_find


class AccountAdapter(DefaultAccountAdapter):
    def get_signup_form_initial_data(self, request):
        initial = super().get_signup_form_initial_data(request)

        token = request.session.get(PENDING_INVITATION_KEY)
        invitation = invitation_find(token=token) if token else None
        if invitation is not None:
            initial["email"] = invitation.email
        return initial

    def clean_email(self, email: str) -> str:
        """Every address a staff member types (sign-up, add or change an address, password reset): allauth would cut
        an over-long one to the column's 254 characters and store another address (and a second sign-up with it was
        a database error). A field error instead, by the rule customer addresses follow."""
        email = super().clean_email(email)
        validate_customer_email(email)
        return email
