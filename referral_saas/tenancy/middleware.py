"""Staff sessions: `request.merchant` and `request.membership` come from the session's chosen membership."""

from __future__ import annotations

from referral_saas.tenancy.selectors import membership_for_session, memberships_for_user

_STAFF_PREFIXES = ("/admin/", "/accounts/")


class CurrentMerchantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.merchant = None
        request.membership = None
        request.memberships = []
        user = getattr(request, "user", None)
        if request.path.startswith(_STAFF_PREFIXES) and user is not None and user.is_authenticated:
            membership = membership_for_session(user=user, session=request.session)
            if membership is not None:
                request.membership = membership
                request.merchant = membership.merchant
                request.memberships = memberships_for_user(user=user)
        return self.get_response(request)
