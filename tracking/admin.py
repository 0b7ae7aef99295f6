"""Merchant admin: codes (vanity, disable), clicks, referrals, conversions and refunds."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from analytics.exports import CsvExportMixin
from analytics.services.rollup import GOOD_REWARD_STATUSES
from referral_saas.errors import ApplicationError
from referral_saas.tenancy.admin_site import ReadOnlyTenantAdmin, TenantModelAdmin, merchant_admin, ops_admin
from tracking import services
from tracking.models import Click, CodeRoute, Conversion, Referral, ReferralCode, Refund


class ReferralCodeForm(forms.ModelForm):
    class Meta:
        model = ReferralCode
        fields = ["code", "status"]
        help_texts = {"code": _("Set a vanity code (3-32 letters, digits, dashes). The old link stops working.")}

    def clean_code(self):
        code = self.cleaned_data["code"]
        if code != self.initial.get("code"):
            try:
                code = services.code_vanity_check(code=self.instance, vanity=code)
            except ApplicationError as exc:
                messages = [str(m) for errors in exc.fields.values() for m in errors] or [exc.message]
                raise ValidationError(messages) from exc
        return code


@admin.register(ReferralCode, site=merchant_admin)
class ReferralCodeAdmin(TenantModelAdmin):
    form = ReferralCodeForm
    list_display = ["code", "participant", "program", "variant", "status", "is_vanity", "livemode", "created_at"]
    list_filter = ["status", "program", "is_vanity", "livemode"]
    search_fields = ["code", "code_normalized", "participant__email", "participant__external_id"]
    autocomplete_fields = ["participant"]
    readonly_fields = ["participant", "program", "variant", "livemode", "created_at"]
    actions = ["disable", "enable"]

    def has_add_permission(self, request):
        return False  # a code comes with joining a program

    def save_model(self, request, obj, form, change):
        stored = ReferralCode.objects.for_merchant(request.merchant).get(pk=obj.pk)
        if "code" in form.changed_data:
            services.code_set_vanity(code=stored, vanity=form.cleaned_data["code"])
        if "status" in form.changed_data:
            services.code_set_status(code=stored, status=form.cleaned_data["status"])

    @admin.action(description=_("Disable the selected codes"), permissions=["change"])
    def disable(self, request, queryset):
        for code in queryset:
            services.code_set_status(code=code, status=ReferralCode.Status.DISABLED)

    @admin.action(description=_("Enable the selected codes"), permissions=["change"])
    def enable(self, request, queryset):
        for code in queryset:
            services.code_set_status(code=code, status=ReferralCode.Status.ACTIVE)


@admin.register(Click, site=merchant_admin)
class ClickAdmin(ReadOnlyTenantAdmin):
    list_display = ["occurred_at", "code", "program", "is_bot", "utm_source", "referer"]
    list_filter = ["is_bot", "program", "utm_source", "livemode"]
    search_fields = ["code__code", "click_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # clicks are many: no COUNT(*) over all of them on each page


@admin.register(Referral, site=merchant_admin)
class ReferralAdmin(CsvExportMixin, ReadOnlyTenantAdmin):
    csv_columns = [
        "id", ("Program", "program.slug"), ("Variant", "variant.name"), ("Referrer", "referrer.email"),
        ("Referrer id", "referrer.external_id"), ("Code", "code.code"), "referee_email", "referee_external_id",
        "status", "rejection_reason", "livemode", "touched_at", "signed_up_at", "converted_at", "created_at",
    ]  # fmt: skip
    list_display = [
        "referrer",
        "referee_email",
        "referee_external_id",
        "program",
        "status",
        "rejection_reason",
        "created_at",
        "converted_at",
    ]
    list_filter = ["status", "rejection_reason", "program", "livemode"]
    search_fields = ["referee_email", "referee_external_id", "referrer__email", "code__code"]
    date_hierarchy = "created_at"


class RewardedFilter(admin.SimpleListFilter):
    """Orders with a reward in good standing (pending, approved, issued or redeemed): the dashboard's "Rewarded"."""

    title = _("rewarded")
    parameter_name = "rewarded"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        reward = Conversion._meta.get_field("rewards").related_model  # rewards builds on tracking, not the reverse
        good = Exists(
            reward.all_merchants.filter(
                merchant_id=OuterRef("merchant_id"), conversion_id=OuterRef("pk"), status__in=GOOD_REWARD_STATUSES
            )
        )
        return queryset.filter(good if self.value() == "yes" else ~good)


@admin.register(Conversion, site=merchant_admin)
class ConversionAdmin(CsvExportMixin, ReadOnlyTenantAdmin):
    csv_columns = [
        "order_id", "amount", "currency", "refunded_amount", "status", "rejection_reason", ("Program", "program.slug"),
        ("Referral id", "referral_id"), ("Referrer", "referral.referrer.email"), "customer_external_id",
        "customer_email", "is_new_customer", "code_given", "livemode", "occurred_at", "created_at",
    ]  # fmt: skip
    list_display = [
        "order_id",
        "amount",
        "currency",
        "status",
        "rejection_reason",
        "program",
        "customer_email",
        "is_new_customer",
        "refunded_amount",
        "occurred_at",
    ]
    list_filter = [
        "status", "rejection_reason", "program", "is_new_customer", RewardedFilter, "currency", "livemode",
    ]  # fmt: skip
    search_fields = ["order_id", "customer_email", "customer_external_id", "code_given"]
    date_hierarchy = "occurred_at"


@admin.register(Refund, site=merchant_admin)
class RefundAdmin(ReadOnlyTenantAdmin):
    list_display = ["refund_id", "conversion", "amount", "currency", "created_at"]
    search_fields = ["refund_id", "conversion__order_id"]
    list_filter = ["currency"]


for model in (ReferralCode, Click, Referral, Conversion, Refund, CodeRoute):
    ops_admin.register(model, list_display=["__str__"])
