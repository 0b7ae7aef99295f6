"""Shop API authentication: `Authorization: Bearer rk_live_...` names the merchant and the mode."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from referral_saas.tenancy.models import ApiKey
from referral_saas.tenancy.services import apikey_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # -> 401 not_authenticated from the permission check
        scheme, _sep, raw_key = header.partition(" ")
        if scheme.lower() != "bearer":
            raw_key = ""  # still hashed and looked up below: every failure costs the same
        api_key = apikey_authenticate(raw_key=raw_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key. Send `Authorization: Bearer rk_live_...`.")
        if not api_key.merchant.is_active:
            raise exceptions.AuthenticationFailed("This merchant account is suspended.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasMerchant(BasePermission):
    """The request carries an active API key (so `request.merchant` is known)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)
