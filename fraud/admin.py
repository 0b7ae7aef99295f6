"""Merchant admin: the fraud review queue (approve / reject with a reason, audit trail), per-program fraud settings
and the blocklist. Analysts (read only) see everything and decide nothing."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.filters import ChoicesFieldListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from fraud import services
from fraud.checks import LABELS
from fraud.models import BlocklistEntry, Decision, FraudAssessment, FraudReviewEvent, FraudSettings, Sighting
from referral_saas.errors import ApplicationError
from referral_saas.money import format_money
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantInline,
    TenantModelAdmin,
    TenantModelForm,
    merchant_admin,
    ops_admin,
)

# --- the review queue -----------------------------------------------------------------------------------------------


class ReviewFirstDecisionFilter(ChoicesFieldListFilter):
    """The queue opens on what a human should look at: what waits for a review, and the orders the thresholds
    rejected on their own that nobody has looked at yet (a shop testing from one computer sees its test orders
    there, with the reason). Review, approve, reject or all on request."""

    ALL = "all"
    OPEN = "open"

    def _value(self) -> str:
        return self.lookup_val[-1] if self.lookup_val else self.OPEN

    def queryset(self, request, queryset):
        value = self._value()
        if value == self.ALL:
            return queryset
        if value == self.OPEN:
            unreviewed_rejection = Q(decision=Decision.REJECT, auto_decision=Decision.REJECT, reviewed_at__isnull=True)
            return queryset.filter(Q(decision=Decision.REVIEW) | unreviewed_rejection)
        if value not in Decision.values:
            raise IncorrectLookupParameters(value)
        return queryset.filter(**{self.field_path: value})

    def choices(self, changelist):
        current = self._value()
        choices = [(self.OPEN, _("To look at (review and automatic rejections)")), *Decision.choices]
        for value, label in [*choices, (self.ALL, _("All"))]:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.lookup_kwarg: value}, [self.lookup_kwarg_isnull]),
                "display": label,
            }


class ReviewReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=_("Kept in the audit trail of each assessment."),
    )


class FraudReviewEventInline(ReadOnlyTenantInline):
    """The audit trail, read only."""

    model = FraudReviewEvent
    fields = ["at", "user", "action", "previous_decision", "reason"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


def _signal_label(signal: dict) -> str:
    return str(LABELS.get(signal.get("name"), signal.get("name")))


@admin.register(FraudAssessment, site=merchant_admin)
class FraudAssessmentAdmin(TenantModelAdmin):
    list_display = ["created_at", "referrer", "friend", "order", "score", "decision", "signal_list"]
    list_filter = [("decision", ReviewFirstDecisionFilter), "auto_decision", "program", "livemode"]
    search_fields = [
        "conversion__order_id",
        "referral__referee_email",
        "referral__referee_external_id",
        "referral__referrer__email",
        "referral__referrer__external_id",
    ]
    list_select_related = ["referral__referrer", "conversion"]
    date_hierarchy = "created_at"
    actions = ["approve", "reject"]
    inlines = [FraudReviewEventInline]
    fields = [
        "referrer",
        "friend",
        "order",
        "program",
        "score",
        "signal_detail",
        "auto_decision",
        "decision",
        "reviewed_by",
        "reviewed_at",
        "review_reason",
        "created_at",
    ]
    readonly_fields = fields

    # --- columns ---

    @admin.display(description=_("referrer"), ordering="referral__referrer__email")
    def referrer(self, obj):
        return str(obj.referral.referrer)

    @admin.display(description=_("friend"), ordering="referral__referee_email")
    def friend(self, obj):
        return obj.referral.referee_email or obj.referral.referee_external_id or "—"

    @admin.display(description=_("order"), ordering="conversion__order_id")
    def order(self, obj):
        if obj.conversion_id is None:
            return _("(sign-up)")
        return f"{obj.conversion.order_id} · {format_money(obj.conversion.amount, obj.conversion.currency)}"

    @admin.display(description=_("signals"))
    def signal_list(self, obj):
        return format_html_join(
            mark_safe("<br>"), "{} <b>+{}</b>", ((_signal_label(s), s.get("weight")) for s in obj.signals)
        )

    @admin.display(description=_("signals"))
    def signal_detail(self, obj):
        if not obj.signals:
            return _("No signal: nothing suspicious was found.")
        rows = format_html_join(
            "",
            "<li><b>{}</b> (+{}): {}</li>",
            ((_signal_label(s), s.get("weight"), s.get("detail", "")) for s in obj.signals),
        )
        return format_html("<ul>{}</ul>", rows)

    # --- permissions: the page is read only; approving and rejecting is the "review" permission ---

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request) -> bool:
        return self._can_write(request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The actions run on the changelist; "all" so that an approved or rejected assessment can be overturned.
        changelist = reverse("admin:fraud_fraudassessment_changelist")
        review_url = f"{changelist}?decision__exact={ReviewFirstDecisionFilter.ALL}"
        extra_context = {
            **(extra_context or {}),
            "can_review": self.has_review_permission(request),
            "review_url": review_url,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- actions ---

    @admin.action(description=_("Approve the selected assessments…"), permissions=["review"])
    def approve(self, request, queryset):
        return self._review(request, queryset, approve=True)

    @admin.action(description=_("Reject the selected assessments as fraud…"), permissions=["review"])
    def reject(self, request, queryset):
        return self._review(request, queryset, approve=False)

    def _review(self, request, queryset, *, approve: bool):
        """First an intermediate page asks for the reason; its POST ("confirm") decides each assessment."""
        form = ReviewReasonForm(request.POST if "confirm" in request.POST else None)
        assessments = list(queryset.select_related("referral__referrer", "conversion"))
        if form.is_bound and form.is_valid():
            done = 0
            for assessment in assessments:
                try:
                    services.assessment_review(
                        assessment=assessment, approve=approve, reason=form.cleaned_data["reason"], user=request.user
                    )
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{assessment}: {exc.message}", level=messages.ERROR)
            if done:
                message = (
                    ngettext("%(n)d assessment approved.", "%(n)d assessments approved.", done)
                    if approve
                    else ngettext("%(n)d assessment rejected.", "%(n)d assessments rejected.", done)
                )
                self.message_user(request, message % {"n": done}, level=messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Approve assessments") if approve else _("Reject assessments as fraud"),
            "opts": self.model._meta,
            "assessments": [(a, self.order(a), self.friend(a), self.signal_list(a)) for a in assessments],
            "form": form,
            "action": "approve" if approve else "reject",
            "approve": approve,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/fraud/review_reason.html", context)


# --- settings and blocklist -----------------------------------------------------------------------------------------


class FraudSettingsForm(TenantModelForm):
    unique_messages = {"fraud_settings_one_per_program": _("This program has fraud settings already.")}

    class Meta:
        model = FraudSettings
        fields = [
            "program",
            "review_threshold",
            "reject_threshold",
            "velocity_per_hour",
            "velocity_per_day",
            "min_seconds_click_to_order",
            "check_disposable_email",
        ]


@admin.register(FraudSettings, site=merchant_admin)
class FraudSettingsAdmin(TenantModelAdmin):
    form = FraudSettingsForm
    list_display = [
        "program",
        "review_threshold",
        "reject_threshold",
        "velocity_per_hour",
        "velocity_per_day",
        "min_seconds_click_to_order",
        "check_disposable_email",
    ]
    list_select_related = ["program"]
    search_fields = ["program__name", "program__slug"]


class BlocklistEntryForm(forms.ModelForm):
    class Meta:
        model = BlocklistEntry
        fields = ["kind", "value", "note"]
        help_texts = {
            "value": _("e.g. ana@example.com, example.com (covers its subdomains), 203.0.113.7 or 203.0.113.0/24."),
        }

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:  # only the note changes on an existing entry
            return data
        kind, value = data.get("kind"), data.get("value")
        if kind and value:
            try:
                data["value"] = services.blocklist_normalize(kind=kind, value=value)
            except ApplicationError as exc:
                for message in [m for errors in exc.fields.values() for m in errors] or [exc.message]:
                    self.add_error("value", message)
                return data
            if BlocklistEntry.objects.for_merchant(self.merchant).filter(kind=kind, value=data["value"]).exists():
                self.add_error("value", _("This is on your blocklist already."))
        return data

    def validate_unique(self):
        pass  # checked within the merchant in clean()


@admin.register(BlocklistEntry, site=merchant_admin)
class BlocklistEntryAdmin(TenantModelAdmin):
    form = BlocklistEntryForm
    list_display = ["value", "kind", "note", "created_by", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value", "note"]

    def get_readonly_fields(self, request, obj=None):
        return ["kind", "value", "created_by", "created_at"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            services.blocklist_entry_set_note(entry=obj, note=form.cleaned_data.get("note", ""))
            return
        entry = services.blocklist_entry_add(
            merchant=request.merchant,
            kind=form.cleaned_data["kind"],
            value=form.cleaned_data["value"],
            note=form.cleaned_data.get("note", ""),
            created_by=request.user,
        )
        obj.pk, obj.merchant, obj.value, obj.ip_hash, obj.created_at = (
            entry.pk,
            entry.merchant,
            entry.value,
            entry.ip_hash,
            entry.created_at,
        )
        obj._state.adding = False


class _OpsReadOnly(admin.ModelAdmin):
    """Operators look (for support); merchants change their own fraud data through the merchant admin, where it is
    validated (a blocklist value the scoring cannot parse would break it)."""

    list_filter = ["merchant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


ops_admin.register(FraudAssessment, _OpsReadOnly, list_display=["id", "merchant", "score", "decision", "created_at"])
ops_admin.register(FraudReviewEvent, _OpsReadOnly, list_display=["id", "merchant", "action", "at"])
for model in (FraudSettings, BlocklistEntry, Sighting):
    ops_admin.register(model, _OpsReadOnly, list_display=["__str__", "merchant"])
