"""Merchant admin: codes (vanity, disable), clicks, referrals, conversions, refunds and exchange rates."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from programs.models import Program, ShareEvent
from referral_saas.admin_money import MoneyColumnsMixin
from referral_saas.csv_export import CsvExportMixin
from referral_saas.errors import ApplicationError
from referral_saas.money import active_currencies, format_money
from referral_saas.statuses import GOOD_REWARD_STATUSES
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantAdmin,
    TenantModelAdmin,
    TenantModelForm,
    form_add_domain_error,
    merchant_admin,
    ops_admin,
)
from tracking import exchange_rates, services
from tracking.models import Click, CodeRoute, Conversion, ExchangeRate, Referral, ReferralCode, Refund


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


class ReferrerRoleFilter(admin.SimpleListFilter):
    """Referrers (who joined on their own, or shared their link) or the friends enrolled when they were referred:
    the dashboards' participation rate counts the referrers, and links to this list filtered to them."""

    title = _("who")
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return [("referrer", _("Referrers")), ("friend", _("Friends enrolled by a referral, not sharing"))]

    def queryset(self, request, queryset):
        if self.value() not in ("referrer", "friend"):
            return queryset
        shared = Exists(
            ShareEvent.objects.for_merchant(request.merchant).filter(
                program=OuterRef("program"), participant=OuterRef("participant")
            )
        )
        referrer = Q(participant__referred_by__isnull=True) | Q(shared)
        return queryset.filter(referrer) if self.value() == "referrer" else queryset.exclude(referrer)


@admin.register(ReferralCode, site=merchant_admin)
class ReferralCodeAdmin(TenantModelAdmin):
    form = ReferralCodeForm
    list_display = ["code", "participant", "program", "variant", "status", "is_vanity", "livemode", "created_at"]
    list_filter = ["status", "program", ReferrerRoleFilter, "is_vanity", "livemode"]
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


class CappedCountPaginator(Paginator):
    """Counts at most CAP + 1 rows (a COUNT over a LIMIT): a list of millions of clicks is not counted in full on
    every page view. Exact up to CAP; beyond it the list says CAP + 1 and pages through those."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()


class ShopProgramFilter(admin.RelatedFieldListFilter):
    """The shop's programs as the choices (the tenant admin's "related only" filter finds the programs present
    among the listed rows, which for clicks means reading every click)."""

    def field_choices(self, field, request, model_admin):
        return [
            (program.pk, str(program)) for program in Program.objects.for_merchant(request.merchant).order_by("name")
        ]


@admin.register(Click, site=merchant_admin)
class ClickAdmin(ReadOnlyTenantAdmin):
    # Nothing on this page reads all of a shop's clicks (there may be tens of millions): no date hierarchy (its
    # year list is a DISTINCT over every click), no list filter whose choices come from the clicks (utm_source's
    # did; the program filter lists the shop's programs), a capped count. The dashboards link here with
    # `occurred_at__gte` / `__lt`, and `?utm_source=...` still filters.
    list_display = ["occurred_at", "code", "program", "is_bot", "utm_source", "referer"]
    list_filter = ["is_bot", ("program", ShopProgramFilter), "livemode"]
    search_fields = ["code__code", "click_id"]
    paginator = CappedCountPaginator
    show_full_result_count = False  # no COUNT(*) over all of them on each page


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
class ConversionAdmin(MoneyColumnsMixin, CsvExportMixin, ReadOnlyTenantAdmin):
    money_columns = {
        "amount": "currency",
        "refunded_amount": "currency",
        "program_amount": "program_currency",
        "program_refunded_amount": "program_currency",
        "exchange_rate": None,
    }
    csv_columns = [
        "order_id", "amount", "currency", "refunded_amount", "program_amount", "program_currency",
        "program_refunded_amount", "exchange_rate", "status", "rejection_reason", ("Program", "program.slug"),
        ("Referral id", "referral_id"), ("Referrer", "referral.referrer.email"), "customer_external_id",
        "customer_email", "is_new_customer", "code_given", "livemode", "occurred_at", "created_at",
    ]  # fmt: skip
    list_display = [
        "order_id",
        "amount",
        "currency",
        "in_program_currency",
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

    @admin.display(description=_("in the program's currency"), ordering="program_amount")
    def in_program_currency(self, obj):
        """Shown only for an order converted from another currency (else it is the amount)."""
        if obj.exchange_rate is None or obj.program_amount is None:
            return "—"
        return format_money(obj.program_amount, obj.program_currency)


@admin.register(Refund, site=merchant_admin)
class RefundAdmin(MoneyColumnsMixin, ReadOnlyTenantAdmin):
    money_columns = {"amount": "currency"}
    list_display = ["refund_id", "conversion", "amount", "currency", "created_at"]
    search_fields = ["refund_id", "conversion__order_id"]
    list_filter = ["currency"]


for model in (ReferralCode, Click, Referral, Conversion, Refund, CodeRoute, ExchangeRate):
    ops_admin.register(model, list_display=["__str__"])


# --- exchange rates -----------------------------------------------------------------------------------------------


def _currency_choices():
    return [(c, c) for c in sorted(active_currencies())]


class ExchangeRateForm(TenantModelForm):
    unique_messages = {
        "exchange_rate_unique_day": _("There is a rate for these currencies from this day already: edit it.")
    }

    base_currency = forms.ChoiceField(
        label=capfirst(_("order currency")), choices=_currency_choices, help_text=_("The currency orders come in.")
    )
    quote_currency = forms.ChoiceField(
        label=capfirst(_("program currency")),
        choices=_currency_choices,
        help_text=_("The currency the program pays in."),
    )

    class Meta:
        model = ExchangeRate
        fields = ["base_currency", "quote_currency", "rate", "valid_from"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "rate" in self.initial:
            self.initial["rate"] = f"{self.instance.rate.normalize():f}"  # 4.2875, not 4.2875000000

    def clean(self):
        data = super().clean()
        if any(field in self.errors for field in self.Meta.fields):
            return data
        problems = exchange_rates.exchange_rate_errors(
            base_currency=data["base_currency"],
            quote_currency=data["quote_currency"],
            rate=data["rate"],
            valid_from=data["valid_from"],
        )
        for field, messages in problems.items():
            for message in messages:
                self.add_error(field, message)
        return data


class ExchangeRateImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A first line naming the columns currency, rate and valid_from (YYYY-MM-DD), e.g. EUR,4.2875,2026-01-01;"
            " optionally quote_currency. A rate already there for the same currencies and day is replaced."
        ),
    )
    quote_currency = forms.ChoiceField(
        label=capfirst(_("program currency")),
        choices=_currency_choices,
        help_text=_("What the rates convert into, unless the file has a quote_currency column."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_RATES_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is too large (at most 2 MB)."))
        return upload


MAX_RATES_UPLOAD_BYTES = 2 * 1024 * 1024


@admin.register(ExchangeRate, site=merchant_admin)
class ExchangeRateAdmin(MoneyColumnsMixin, TenantModelAdmin):
    money_columns = {"rate": None}
    form = ExchangeRateForm
    list_display = ["base_currency", "quote_currency", "rate", "valid_from", "updated_at"]
    list_filter = ["base_currency", "quote_currency"]
    date_hierarchy = "valid_from"
    change_list_template = "admin/tracking/exchangerate/change_list.html"

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("quote_currency", request.merchant.default_currency)
        initial.setdefault("valid_from", timezone.localdate())
        return initial

    def save_model(self, request, obj, form, change):
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)

    def get_urls(self):
        custom = [
            path("import/", self.admin_site.admin_view(self.import_view), name="tracking_exchangerate_import"),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "import_url": reverse(f"{self.admin_site.name}:tracking_exchangerate_import")
            if self.has_add_permission(request)
            else None,
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"quote_currency": request.merchant.default_currency}
        bound = request.method == "POST"
        form = ExchangeRateImportForm(request.POST, request.FILES) if bound else ExchangeRateImportForm(initial=initial)
        if bound and form.is_valid():
            try:
                result = services.exchange_rates_import(
                    merchant=request.merchant,
                    data=form.cleaned_data["file"].read(),
                    quote_currency=form.cleaned_data["quote_currency"],
                )
            except ApplicationError as exc:
                form_add_domain_error(form, exc, "file")
            else:
                self.message_user(
                    request,
                    gettext("Imported: %(created)s, %(updated)s, %(unchanged)s.")
                    % {
                        "created": ngettext("%(n)d new rate", "%(n)d new rates", result.created)
                        % {"n": result.created},
                        "updated": ngettext("%(n)d rate changed", "%(n)d rates changed", result.updated)
                        % {"n": result.updated},
                        "unchanged": ngettext("%(n)d already there", "%(n)d already there", result.unchanged)
                        % {"n": result.unchanged},
                    },
                )
                return redirect(reverse(f"{self.admin_site.name}:tracking_exchangerate_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import exchange rates"),
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/tracking/exchangerate/import.html", context)
