"""Staff pages outside the admin: accept a team invitation, create another shop."""

from __future__ import annotations

from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from referral_saas.errors import ApplicationError
from referral_saas.tenancy import services
from referral_saas.tenancy.forms import PENDING_INVITATION_KEY, NewShopForm
from referral_saas.tenancy.models import User
from referral_saas.tenancy.selectors import SESSION_MERCHANT_KEY


class SignupView(allauth_views.SignupView):
    """allauth's sign-up (the user, their shop or the invitation they accept, their address) in one transaction.

    Two sign-ups with one address at the same moment both pass the form's "already registered?" look; the second
    insert then breaks the unique address constraint. It gets the form back with that error on the address, and
    nothing of it is stored (no user without a shop, no shop without an owner)."""

    def form_valid(self, form):
        try_save = form.try_save

        def atomic_try_save(request):
            with transaction.atomic():
                return try_save(request)

        form.try_save = atomic_try_save
        try:
            return super().form_valid(form)
        except IntegrityError:
            email = form.cleaned_data.get("email") or ""
            if not email or not User.objects.filter(email__iexact=email).exists():
                raise
            form.add_error("email", get_adapter().error_messages["email_taken"])
            return self.form_invalid(form)


def invitation_accept(request, token: str):
    invitation = services.invitation_find(token=token)
    context = {"invitation": invitation, "token": token}
    if invitation is None:
        return render(request, "tenancy/invitation.html", {**context, "problem": "invalid"}, status=404)
    if invitation.status == "expired":
        return render(request, "tenancy/invitation.html", {**context, "problem": "expired"}, status=410)
    if not request.user.is_authenticated:
        request.session[PENDING_INVITATION_KEY] = token
        return render(request, "tenancy/invitation.html", context)
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ApplicationError as exc:
            return render(request, "tenancy/invitation.html", {**context, "error": exc.message}, status=exc.status_code)
        request.session.pop(PENDING_INVITATION_KEY, None)
        request.session[SESSION_MERCHANT_KEY] = membership.merchant_id
        messages.success(request, _("Welcome to %(shop)s.") % {"shop": membership.merchant.name})
        return redirect("admin:index")
    return render(request, "tenancy/invitation.html", context)


@login_required
def new_shop(request):
    form = NewShopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        merchant = services.merchant_create(
            name=form.cleaned_data["shop_name"],
            owner=request.user,
            default_currency=form.cleaned_data["default_currency"],
            default_language=form.cleaned_data["default_language"],
        )
        request.session[SESSION_MERCHANT_KEY] = merchant.pk
        messages.success(request, _("%(shop)s is ready.") % {"shop": merchant.name})
        return redirect("admin:index")
    return render(request, "tenancy/new_shop.html", {"form": form})
