"""Merchant admin pages for the shop's settings, team, invitations and API keys; ops pages for all of them."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from referral_saas.errors import ApplicationError
from referral_saas.money import active_currencies
from referral_saas.tenancy import services
from referral_saas.tenancy.admin_site import TenantModelAdmin, merchant_admin, ops_admin
from referral_saas.tenancy.models import ApiKey, Invitation, Membership, Merchant, ShopSettings, User

# --- the shop itself --------------------------------------------------------------------------------------------


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class MerchantSettingsForm(forms.ModelForm):
    default_currency = forms.ChoiceField(choices=[])
    timezone = forms.ChoiceField(
        label=capfirst(_("time zone")),
        choices=timezone_choices,
        error_messages={"invalid_choice": _("%(value)s is not a known time zone (e.g. Europe/Warsaw).")},
    )

    class Meta:
        model = ShopSettings
        fields = ["name", "default_currency", "timezone", "default_language"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_currency"].choices = [(c, c) for c in sorted(active_currencies())]


@admin.register(ShopSettings, site=merchant_admin)
class MerchantSettingsAdmin(admin.ModelAdmin):
    """The current merchant's own settings: one row, never another merchant's."""

    form = MerchantSettingsForm
    list_display = ["name", "slug", "default_currency", "timezone", "default_language", "status"]
    readonly_fields = ["slug", "status", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk=request.merchant.pk)

    def has_module_permission(self, request):
        return getattr(request, "membership", None) is not None

    def has_view_permission(self, request, obj=None):
        return getattr(request, "membership", None) is not None

    def has_change_permission(self, request, obj=None):
        return getattr(request, "membership", None) is not None and request.membership.can_write

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404


# --- team -------------------------------------------------------------------------------------------------------


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def clean_role(self):
        role = self.cleaned_data["role"]
        try:
            services.membership_role_change_check(
                membership=Membership.objects.for_merchant(self.instance.merchant).get(pk=self.instance.pk),
                role=role,
                actor=self.request.membership,
            )
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        return role


@admin.register(Membership, site=merchant_admin)
class MembershipAdmin(TenantModelAdmin):
    form = MembershipForm
    list_display = ["user_email", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    readonly_fields = ["user", "created_at"]
    actions = None

    @admin.display(description=_("email"), ordering="user__email")
    def user_email(self, obj):
        return obj.user.email

    def has_add_permission(self, request):
        return False  # teammates join through an invitation

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        services.membership_change_role(membership=obj, role=obj.role, actor=request.membership)

    def delete_view(self, request, object_id, extra_context=None):
        membership = self.get_object(request, object_id)
        if membership is None:
            raise Http404
        if request.method == "POST":
            try:
                services.membership_remove_check(membership=membership, actor=request.membership)
            except ApplicationError as exc:
                self.message_domain_error(request, exc)
                from django.shortcuts import redirect

                return redirect("admin:tenancy_membership_changelist")
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj, actor=request.membership)


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "role"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("email") and cleaned.get("role"):
            try:
                services.invitation_create_check(
                    merchant=self.request.merchant,
                    email=cleaned["email"],
                    role=cleaned["role"],
                    invited_by=self.request.user,
                )
            except ApplicationError as exc:
                raise ValidationError({"role": exc.message}) from exc
        return cleaned


@admin.register(Invitation, site=merchant_admin)
class InvitationAdmin(TenantModelAdmin):
    form = InvitationForm
    list_display = ["email", "role", "status_label", "invited_by", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    actions = ["resend"]

    @admin.display(description=_("status"))
    def status_label(self, obj):
        return obj.status

    def has_change_permission(self, request, obj=None):
        return False  # revoke (delete) and invite again instead

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        try:
            invitation = services.invitation_create(
                merchant=request.merchant, email=obj.email, role=obj.role, invited_by=request.user
            )
        except ApplicationError as exc:
            self.message_domain_error(request, exc)
            return
        obj.pk = invitation.pk
        messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})

    def response_add(self, request, obj, post_url_continue=None):
        from django.shortcuts import redirect

        return redirect("admin:tenancy_invitation_changelist")

    def log_addition(self, request, obj, message):
        if obj.pk:
            return super().log_addition(request, obj, message)
        return None

    @admin.action(description=_("Re-send the selected invitations"), permissions=["add"])
    def resend(self, request, queryset):
        sent = 0
        for invitation in queryset.filter(accepted_at__isnull=True):
            try:
                services.invitation_create(
                    merchant=request.merchant,
                    email=invitation.email,
                    role=invitation.role,
                    invited_by=request.user,
                )
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("Not re-sent to %(email)s: %(reason)s") % {"email": invitation.email, "reason": exc.message},
                    level=messages.ERROR,
                )
            else:
                sent += 1
        if sent:
            messages.success(request, _("Invitations re-sent."))


# --- API keys ---------------------------------------------------------------------------------------------------


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "mode"]


@admin.register(ApiKey, site=merchant_admin)
class ApiKeyAdmin(TenantModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "masked_key", "mode", "state", "created_by", "created_at", "last_used_at"]
    list_filter = ["mode"]
    search_fields = ["name", "last4"]
    readonly_fields = ["masked_key", "mode", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description=_("key"))
    def masked_key(self, obj):
        return format_html("<code>{}</code>", obj.masked) if obj.pk else "—"

    @admin.display(description=_("state"))
    def state(self, obj):
        return _("revoked") if obj.revoked_at else _("active")

    def get_fields(self, request, obj=None):
        return ["name", "mode"] if obj is None else ["name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        api_key, plaintext = services.apikey_create(
            merchant=request.merchant, name=obj.name, mode=obj.mode, created_by=request.user
        )
        for field in ("pk", "merchant_id", "prefix", "key_hash", "last4", "created_at", "created_by_id"):
            setattr(obj, field, getattr(api_key, field))
        messages.warning(
            request,
            format_html(
                "{} <code class='secret' data-testid='new-api-key'>{}</code> {}",
                _("Your new API key:"),
                plaintext,
                _("Copy it now: it will not be shown again."),
            ),
        )

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, so that their history stays

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.apikey_revoke(merchant=request.merchant, api_key_id=api_key.pk)
        messages.success(request, _("Keys revoked: requests with them now get 401."))


# --- ops --------------------------------------------------------------------------------------------------------


@admin.register(User, site=ops_admin)
class OpsUserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_superuser", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]


@admin.register(Merchant, site=ops_admin)
class OpsMerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_currency", "timezone", "status", "created_at"]
    list_filter = ["status", "default_currency"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "status" in form.changed_data:
            services.merchant_set_status(merchant=obj, status=obj.status)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            inline_form.instance.merchant = form.instance
        super().save_formset(request, form, formset, change)


@admin.register(ApiKey, site=ops_admin)
class OpsApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "merchant", "masked", "mode", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["mode"]
    search_fields = ["name", "merchant__name", "last4"]
    readonly_fields = [
        "merchant", "name", "mode", "prefix", "last4", "key_hash", "created_by", "created_at", "last_used_at",
        "revoked_at",
    ]  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True).select_related("merchant"):
            services.apikey_revoke(merchant=api_key.merchant, api_key_id=api_key.pk)


@admin.register(Invitation, site=ops_admin)
class OpsInvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "merchant", "role", "status", "created_at", "expires_at"]
    search_fields = ["email", "merchant__name"]

    def has_add_permission(self, request):
        return False
