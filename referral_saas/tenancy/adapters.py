"""allauth hooks: the signup form needs the request (to see a pending invitation)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def get_signup_form_initial_data(self, request):
        initial = super().get_signup_form_initial_data(request)
        from referral_saas.tenancy.forms import PENDING_INVITATION_KEY
        from referral_saas.tenancy.services import invitation_find

        token = request.session.get(PENDING_INVITATION_KEY)
        invitation = invitation_find(token=token) if token else None
        if invitation is not None:
            initial["email"] = invitation.email
        return initial
