"""Merchant admin: programs (create, edit, pause, end, duplicate), A/B variants, participants, invites, shares."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from programs import services, signals
from programs.fields import CustomerEmailFormField
from programs.models import Invite, Participant, Program, ProgramText, ProgramVariant, ShareEvent
from referral_saas.api import is_id
from referral_saas.csv_export import CsvExportMixin
from referral_saas.errors import ApplicationError
from referral_saas.money import active_currencies, currency_decimals, fits_currency
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantAdmin,
    TenantModelAdmin,
    TenantModelForm,
    merchant_admin,
    ops_admin,
)
from referral_saas.tenancy.models import LANGUAGE_CHOICES


class ProgramForm(TenantModelForm):
    unique_messages = {"program_unique_slug": _("You already have a program with this slug.")}

    currency = forms.ChoiceField(label=capfirst(_("currency")), choices=[])
    landing_url = forms.URLField(
        label=capfirst(_("landing page")),
        max_length=500,
        assume_scheme="https",
        help_text=Program._meta.get_field("landing_url").help_text,
    )

    class Meta:
        model = Program
        # The model's help text names /p/<shop>/<slug>/, which the admin (help text is HTML) showed as "/p///".
        help_texts = {"slug": _("Used in the portal address: /p/(your shop)/(this slug)/")}
        fields = [
            "name", "slug", "status", "starts_on", "ends_on", "currency", "default_language", "referrer_offer",
            "referee_offer", "landing_url", "friend_welcome_page", "good_fit", "terms", "attribution_window_days",
            "attribution_model",
            "new_customers_only", "goal_customers", "goal_revenue", "budget", "leaderboard_enabled",
        ]  # fmt: skip
        widgets = {"terms": forms.Textarea(attrs={"rows": 6}), "good_fit": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c, c) for c in sorted(active_currencies())]

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_on"), data.get("ends_on")
        if starts and ends and ends < starts:
            self.add_error("ends_on", _("The end date must be on or after the start date."))
        currency = data.get("currency")
        for field in ("budget", "goal_revenue"):  # in the program's currency: 99.50 is no amount of yen
            value = data.get(field)
            if currency and value is not None and not fits_currency(value, currency):
                message = _("%(currency)s has %(n)d decimal places.")
                self.add_error(field, message % {"currency": currency, "n": currency_decimals(currency)})
        return data


class VariantInline(admin.TabularInline):
    model = ProgramVariant
    extra = 0
    fields = ["name", "weight", "referrer_offer", "referee_offer"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """A row's fields sit under the table's column headings, with no <label>: each names itself for screen
        readers (axe: form elements must have labels)."""
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in self.fields:
            field.widget.attrs.setdefault("aria-label", capfirst(db_field.verbose_name))
        return field

    def get_queryset(self, request):
        return super().get_queryset(request).for_merchant(request.merchant)

    def has_add_permission(self, request, obj=None):
        return request.membership.can_write

    def has_change_permission(self, request, obj=None):
        return request.membership.can_write

    def has_delete_permission(self, request, obj=None):
        return request.membership.can_write

    def has_view_permission(self, request, obj=None):
        return True


class ProgramTextInline(VariantInline):
    model = ProgramText
    fields = ["language", "name", "referrer_offer", "referee_offer", "good_fit", "terms"]
    verbose_name = capfirst(_("the portal's texts in another language"))
    verbose_name_plural = _("The portal's texts in other languages")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in ("good_fit", "terms"):
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2})
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # labelled as VariantInline's


def warn_about_setup(request, program) -> None:
    """The guardrails: what in the program's setup would mislead customers or pay nobody, as warnings on the page."""
    for warning in signals.program_setup_warnings(program):
        messages.warning(request, warning)


def _preview_panel(program) -> signals.Panel:
    """The program's portal as a customer opens it, in each language."""
    path = f"p/{program.merchant.slug}/{program.slug}/"
    rows = [signals.PanelRow(name, f"/{code}/{path}", f"/{code}/{path}") for code, name in LANGUAGE_CHOICES]
    return signals.Panel(30, _("Preview the portal"), rows)


OFFER_FIELDS = ("referrer_offer", "referee_offer", "landing_url", "friend_welcome_page", "good_fit", "terms")


@admin.register(Program, site=merchant_admin)
class ProgramAdmin(TenantModelAdmin):
    form = ProgramForm
    inlines = [VariantInline, ProgramTextInline]
    list_display = ["name", "slug", "status", "starts_on", "ends_on", "currency", "portal_link", "install_link"]
    list_filter = ["status", "attribution_model"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    actions = ["activate", "pause", "end", "duplicate"]
    fieldsets = (
        (None, {"fields": ("name", "slug", "status", ("starts_on", "ends_on"), "currency", "default_language")}),
        (_("Offer"), {"fields": OFFER_FIELDS}),
        (_("Attribution"), {"fields": ("attribution_window_days", "attribution_model", "new_customers_only")}),
        (_("Goals and budget"), {"fields": (("goal_customers", "goal_revenue"), "budget", "leaderboard_enabled")}),
    )

    @admin.display(description=_("portal"))
    def portal_link(self, obj):
        url = f"/p/{obj.merchant.slug}/{obj.slug}/"
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description=_("install"))
    def install_link(self, obj):
        # The install page belongs to the shop integrations (the app above this one), named by its URL only.
        url = reverse("admin:integrations_connection_install", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Install in your shop"))

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("currency", request.merchant.default_currency)
        initial.setdefault("default_language", request.merchant.default_language)
        return initial

    def save_model(self, request, obj, form, change):
        if not change:  # a new program: nothing cached about it yet
            services.program_create(merchant=request.merchant, program=obj)
            return
        # A refusal (restarting an ended program) is shown on the form by the admin base, with nothing saved.
        services.program_update(program=obj, status=form.cleaned_data["status"])

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        warn_about_setup(request, form.instance)  # with its variants saved

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The program's page is the merchant's home for it: the guardrails as warnings, and every app's panel
        (numbers, the rules that pay and the offers they generate in each language, the install checklist, the
        portal in each language) above the form."""
        program = self.get_object(request, object_id)
        if program is not None:
            if request.method == "GET":
                warn_about_setup(request, program)
            extra_context = {
                **(extra_context or {}),
                "program_panels": [*signals.program_panels(program, request), _preview_panel(program)],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            inline_form.instance.merchant = request.merchant
        super().save_formset(request, form, formset, change)

    def _set_status(self, request, queryset, status):
        done = 0
        for program in queryset:
            try:
                services.program_set_status(program=program, status=status)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{program}: {exc.message}", level=messages.ERROR)
        if done:
            self.message_user(request, _("%(n)d program(s) updated.") % {"n": done})

    @admin.action(description=_("Activate the selected programs"), permissions=["change"])
    def activate(self, request, queryset):
        self._set_status(request, queryset, Program.Status.ACTIVE)

    @admin.action(description=_("Pause the selected programs"), permissions=["change"])
    def pause(self, request, queryset):
        self._set_status(request, queryset, Program.Status.PAUSED)

    @admin.action(description=_("End the selected programs"), permissions=["change"])
    def end(self, request, queryset):
        self._set_status(request, queryset, Program.Status.ENDED)

    @admin.action(description=_("Duplicate the selected programs (as drafts)"), permissions=["add"])
    def duplicate(self, request, queryset):
        for program in queryset:
            copy = services.program_duplicate(program=program)
            self.message_user(request, _("Created %(name)s.") % {"name": copy.name})


class IdListFilter(admin.SimpleListFilter):
    """A list filter whose value is a row id: anything else is Django's "bad filter" page, never a 500."""

    def condition(self, request, pk: int):
        raise NotImplementedError

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not is_id(value):
            raise IncorrectLookupParameters(value)
        return queryset.filter(self.condition(request, int(value)))


class ParticipantProgramFilter(IdListFilter):
    """Participants who joined a program (they have its code); a participant can be in several programs."""

    title = _("program")
    parameter_name = "program"

    def lookups(self, request, model_admin):
        programs = Program.objects.for_merchant(request.merchant).order_by("name")
        return [(str(program.pk), str(program)) for program in programs]

    def condition(self, request, pk: int) -> Exists:
        code = Participant._meta.get_field("codes").related_model  # tracking builds on programs, not the reverse
        return Exists(code.all_merchants.filter(merchant_id=OuterRef("merchant_id"), participant_id=OuterRef("pk"),
                                                program_id=pk))  # fmt: skip


class ParticipantAdminForm(forms.ModelForm):
    """The email is checked as at every other door (programs.fields); participant_update says whether it (in its
    compared form: anna+x@outlook.com is anna@outlook.com's) or the customer id is another participant's."""

    email = CustomerEmailFormField(label=capfirst(_("email")), required=False)

    class Meta:
        model = Participant
        fields = ["name", "email", "external_id", "language", "status", "marketing_consent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is None:
            return
        if self.instance.status == Participant.Status.ERASED:
            status.disabled = True  # erasure is for good (participant_set_status refuses it too)
        else:
            status.choices = [c for c in status.choices if c[0] != Participant.Status.ERASED]  # the erase action

    def clean_email(self):
        # Whose inbox it is, is participant_update's to say (on this field, through the admin base).
        return self.cleaned_data.get("email") or None


@admin.register(Participant, site=merchant_admin)
class ParticipantAdmin(CsvExportMixin, TenantModelAdmin):
    form = ParticipantAdminForm
    csv_columns = [
        "id", "name", "email", "external_id", "status", "language", "marketing_consent", "livemode",
        ("Referred by (referral id)", "referred_by_id"), "created_at", "erased_at",
    ]  # fmt: skip
    list_display = ["__str__", "email", "external_id", "status", "language", "livemode", "created_at"]
    list_filter = [ParticipantProgramFilter, "status", "language", "livemode", "marketing_consent"]
    search_fields = ["email", "email_normalized", "external_id", "name"]
    readonly_fields = ["email_normalized", "referred_by", "created_at", "erased_at", "livemode"]
    fields = ["name", "email", "external_id", "language", "status", "marketing_consent", *readonly_fields]
    actions = ["block", "unblock", "erase"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False  # customers join through the portal or the API

    def save_model(self, request, obj, form, change):
        # Refusals (another participant's email or id, an erased participant) are shown on the form by the admin
        # base, with nothing saved. Participants are never added here (has_add_permission).
        data = form.cleaned_data
        services.participant_update(
            participant=obj,
            name=data.get("name", obj.name),
            email=data.get("email"),
            external_id=data.get("external_id"),
            language=data.get("language", obj.language),
            marketing_consent=data.get("marketing_consent", obj.marketing_consent),
        )
        if "status" in form.changed_data:  # the status changes through the service, which checks the move
            services.participant_set_status(participant=obj, status=data["status"])

    def _set_status(self, request, queryset, status: str) -> None:
        for participant in queryset:
            try:
                services.participant_set_status(participant=participant, status=status)
            except ApplicationError as exc:
                self.message_user(request, f"{participant}: {exc.message}", level=messages.ERROR)

    @admin.action(description=_("Block the selected participants (their links stop paying)"), permissions=["change"])
    def block(self, request, queryset):
        self._set_status(request, queryset, Participant.Status.BLOCKED)

    @admin.action(description=_("Unblock the selected participants"), permissions=["change"])
    def unblock(self, request, queryset):
        self._set_status(request, queryset, Participant.Status.ACTIVE)

    @admin.action(
        description=_("Erase the selected participants' personal data (privacy request)"), permissions=["delete"]
    )
    def erase(self, request, queryset):
        for participant in queryset:
            services.participant_erase(participant=participant)
        self.message_user(request, _("Personal data erased; anonymous totals kept."))


@admin.register(Invite, site=merchant_admin)
class InviteAdmin(ReadOnlyTenantAdmin):
    list_display = ["email", "participant", "program", "status", "language", "created_at", "sent_at"]
    list_filter = ["status", "program"]
    search_fields = ["email", "participant__email"]


class VariantFilter(IdListFilter):
    """The A/B variant a row counts for on the dashboard; here a share's: the sharer's variant in its program."""

    title = _("variant")
    parameter_name = "variant"

    def lookups(self, request, model_admin):
        variants = ProgramVariant.objects.for_merchant(request.merchant).select_related("program")
        return [(str(v.pk), str(v)) for v in variants.order_by("program__name", "name")]

    def condition(self, request, variant_id: int) -> Q:
        # One code per participant and program, so this joins at most one row per share.
        return Q(participant__codes__program=F("program"), participant__codes__variant_id=variant_id)


@admin.register(ShareEvent, site=merchant_admin)
class ShareEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["channel", "participant", "program", "created_at"]
    list_filter = ["channel", "program", VariantFilter]
    search_fields = ["participant__email", "channel"]
    date_hierarchy = "created_at"
    extra_lookups = ("participant__livemode",)  # a share is live or test like its sharer


for model in (Program, ProgramVariant, ProgramText, Participant, Invite, ShareEvent):
    ops_admin.register(model, list_display=["__str__", "merchant"], list_filter=["merchant"])
