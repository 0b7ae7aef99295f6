"""Staff sign-up (a new shop + its owner) and the "create another shop" form."""

from __future__ import annotations

from allauth.core import context as allauth_context
from django import forms
from django.contrib import messages
from django.utils.translation import gettext_lazy as _

from referral_saas.errors import ApplicationError
from referral_saas.money import active_currencies
from referral_saas.tenancy import services
from referral_saas.tenancy.models import LANGUAGE_CHOICES
from referral_saas.validators import validate_single_line

PENDING_INVITATION_KEY = "pending_invitation_token"


def _currency_choices():
    return [(code, code) for code in sorted(active_currencies())]


class ShopFieldsMixin(forms.Form):
    shop_name = forms.CharField(label=_("Shop name"), max_length=200, validators=[validate_single_line])
    default_currency = forms.ChoiceField(label=_("Currency"), choices=_currency_choices, initial="USD")
    default_language = forms.ChoiceField(label=_("Language of your customers"), choices=LANGUAGE_CHOICES)


class MerchantSignupForm(ShopFieldsMixin):
    """allauth's ACCOUNT_SIGNUP_FORM_CLASS: sign-up creates the shop and makes the new user its owner.

    Someone arriving from a team invitation joins that team instead, so the shop fields are optional then.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = getattr(allauth_context, "request", None)  # set by allauth's AccountMiddleware
        if request is not None and request.session.get(PENDING_INVITATION_KEY):
            for name in ("shop_name", "default_currency", "default_language"):
                self.fields[name].required = False

    def signup(self, request, user) -> None:
        token = request.session.pop(PENDING_INVITATION_KEY, None)
        if token:
            invitation = services.invitation_find(token=token)
            if invitation and invitation.email.lower() == user.email.lower():
                try:
                    services.invitation_accept(token=token, user=user)
                    return
                except ApplicationError as exc:
                    # e.g. it expired while they were signing up: they get a shop of their own, and are told why
                    messages.warning(request, exc.message)
        services.merchant_create(
            name=self.cleaned_data.get("shop_name") or user.email.split("@")[0],
            owner=user,
            default_currency=self.cleaned_data.get("default_currency") or "USD",
            default_language=self.cleaned_data.get("default_language") or "en",
        )


class NewShopForm(ShopFieldsMixin):
    pass
