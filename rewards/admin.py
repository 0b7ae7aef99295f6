"""Merchant admin: reward rules, rewards (release, void, reject), coupon pools and their CSV upload, the points
catalog, the ledger and the cash due (CSV, payouts).

Status changes go through the rewards services only; every page is scoped to the signed-in merchant by
`TenantModelAdmin`, and the custom pages (code upload, cash due, payout) look their rows up through the same scope,
so another merchant's id is a 404.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from programs.admin import VariantFilter
from programs.models import Participant, Program
from referral_saas.admin_money import MoneyColumnsMixin
from referral_saas.api import is_id
from referral_saas.csv_export import CsvExportMixin, stream_csv
from referral_saas.errors import ApplicationError, ValidationFailed
from referral_saas.money import currency_decimals, format_amount, format_money, is_currency
from referral_saas.money import quantize as quantize_money
from referral_saas.tenancy.admin_site import (
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    TenantModelAdmin,
    form_add_domain_error,
    merchant_admin,
    ops_admin,
)
from rewards import selectors, services
from rewards.models import (
    CatalogItem,
    Coupon,
    CouponPool,
    Kind,
    LedgerEntry,
    Reward,
    RewardAdjustment,
    RewardEvent,
    RewardRule,
    Unit,
)
from rewards.services.rules import RULE_FIELDS, coupon_days_errors, pool_errors
from tracking.models import ReferralCode

Trigger = RewardRule.Trigger
ValueType = RewardRule.ValueType
Status = Reward.Status
ITEM_KINDS = frozenset({Kind.FREE_PRODUCT, Kind.CUSTOM})
MAX_ACTION_ROWS = 500  # a confirmation page lists every row, and each move is its own transaction
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # 100,000 codes of up to 64 characters, with room for a second column


# --- shared helpers ---------------------------------------------------------------------------------------------


def _number(value: Decimal | None) -> str:
    """10.00 -> "10", 12.50 -> "12.50": whole numbers without decimals, others as stored."""
    if value is None:
        return ""
    return str(int(value)) if value == value.to_integral_value() else f"{value:f}"


def _lower_first(text) -> str:
    text = str(text)
    return text[:1].lower() + text[1:]


def _actor(request) -> str:
    return f"user:{request.user.email}"


class ScopedUniqueNameForm(forms.ModelForm):
    """The merchant is set by the admin, not the form, so Django cannot check `unique(merchant, program, name)`:
    check it here, so a duplicate name is a form error and not an IntegrityError."""

    merchant = None

    def validate_unique(self):
        name, program = self.cleaned_data.get("name"), self.cleaned_data.get("program")
        if name and program is not None and self.merchant is not None:
            taken = (
                self._meta.model.objects.for_merchant(self.merchant)
                .filter(program=program, name=name)
                .exclude(pk=self.instance.pk)
                .exists()
            )
            if taken:
                self.add_error("name", _("This program already has one with this name."))
        super().validate_unique()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("variant", "pool"):
            # Both are labelled with their program ("Spring / B", "Spring: 15% codes"): one query, not one per option.
            formfield.queryset = formfield.queryset.select_related("program")
        if db_field.name == "pool":
            formfield.label_from_instance = lambda pool: f"{pool.program.name}: {pool.name}"
        return formfield


def _check_pool(form, *, kind, pool, program) -> None:
    for message in pool_errors(kind=kind, pool=pool, program=program):
        form.add_error("pool", message)


def _check_coupon_days(form, days) -> None:
    for message in coupon_days_errors(days):
        form.add_error("coupon_valid_days", message)


# --- reward rules -----------------------------------------------------------------------------------------------


def rule_summary(rule: RewardRule) -> str:
    """One line a person reads: "10% of the order, max 50 PLN, amount-off coupon → referrer, first purchase,
    hold 30 d"."""
    currency = rule.program.currency
    unit = rule.unit
    if rule.value_type == ValueType.PERCENT_OF_ORDER and unit in (Unit.MONEY, Unit.POINTS):
        what = gettext("%(n)s%% of the order") % {"n": _number(rule.value)}
        if rule.max_value is not None:
            cap = f"{_number(rule.max_value)} {currency}" if unit == Unit.MONEY else f"{int(rule.max_value)} pts"
            what += ", " + gettext("max %(cap)s") % {"cap": cap}
    elif unit == Unit.MONEY:
        what = f"{_number(rule.value)} {currency}"
    elif unit == Unit.PERCENT:
        what = f"{_number(rule.value)}%"
    elif unit == Unit.POINTS:
        what = f"{int(rule.value)} pts"
    else:
        what = rule.description or (rule.pool.description if rule.pool_id else "")
    kind = _lower_first(rule.get_kind_display())
    head = f"{what}, {kind}" if what else kind
    if rule.trigger == Trigger.FIRST_PURCHASE:
        when = gettext("first purchase")
    elif rule.trigger == Trigger.EACH_PURCHASE:
        when = (
            gettext("each purchase, up to %(n)d") % {"n": rule.max_purchases}
            if rule.max_purchases
            else gettext("each purchase")
        )
    elif rule.trigger == Trigger.SIGNUP:
        when = gettext("sign-up")
    else:
        when = gettext("after %(n)s successful referrals") % {"n": rule.milestone}
    parts = [f"{head} → {_lower_first(rule.get_side_display())}", when]
    if rule.min_order_value is not None:
        minimum = f"{_number(rule.min_order_value)} {currency}"
        parts.append(gettext("orders from %(amount)s") % {"amount": minimum})
    parts.append(gettext("hold %(n)d d") % {"n": rule.hold_days} if rule.hold_days else gettext("no hold"))
    if rule.cap_per_month:
        parts.append(gettext("max %(n)d a month") % {"n": rule.cap_per_month})
    if rule.cap_total:
        parts.append(gettext("max %(n)d in total") % {"n": rule.cap_total})
    return ", ".join(parts)


class RewardRuleForm(ScopedUniqueNameForm):
    class Meta:
        model = RewardRule
        fields = [
            "name", "program", "variant", "side", "trigger", "max_purchases", "milestone", "kind", "value_type",
            "value", "max_value", "description", "pool", "coupon_prefix", "coupon_valid_days", "min_order_value",
            "hold_days", "cap_per_month", "cap_total", "valid_from", "valid_until", "active",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        if self.merchant is None:  # pragma: no cover - the admin sets it (TenantModelAdmin.get_form)
            return data
        try:
            services.reward_rule_validate(merchant=self.merchant, values=data)
        except ValidationFailed as exc:
            for field, messages in exc.fields.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(RewardRule, site=merchant_admin)
class RewardRuleAdmin(TenantModelAdmin):
    form = RewardRuleForm
    list_display = ["name", "summary", "program", "variant", "active", "valid_from", "valid_until"]
    list_filter = ["program", "side", "trigger", "kind", "active"]
    list_select_related = ["program", "variant__program", "pool"]
    search_fields = ["name", "description"]
    fieldsets = (
        (None, {"fields": ("name",)}),
        (_("Who gets it, and when"), {"fields": ("program", "variant", "side", "trigger", "max_purchases",
                                                 "milestone")}),
        (_("What they get"), {"fields": ("kind", ("value_type", "value", "max_value"), "description", "pool",
                                         ("coupon_prefix", "coupon_valid_days"))}),
        (_("Limits"), {"fields": ("min_order_value", "hold_days", ("cap_per_month", "cap_total"),
                                  ("valid_from", "valid_until"))}),
        (_("Status"), {"fields": ("active",)}),
    )  # fmt: skip

    @admin.display(description=_("reward"))
    def summary(self, obj):
        return rule_summary(obj)

    def save_model(self, request, obj, form, change):
        """Through the rules service (which validates again): a refusal is shown on the form, nothing saved."""
        fields = {name: getattr(obj, name) for name in RULE_FIELDS}
        if change:
            services.reward_rule_update(rule=obj, **fields)
            return
        rule = services.reward_rule_create(merchant=request.merchant, **fields)
        obj.pk, obj.merchant, obj.created_at = rule.pk, rule.merchant, rule.created_at
        obj._state.adding, obj._state.db = False, rule._state.db


# --- rewards ----------------------------------------------------------------------------------------------------


class RewardEventInline(ReadOnlyTenantInline):
    model = RewardEvent
    fields = ["at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields
    verbose_name = _("audit trail entry")
    verbose_name_plural = _("audit trail")


class RewardAdjustmentInline(MoneyColumnsMixin, ReadOnlyTenantInline):
    model = RewardAdjustment
    money_columns = {"old_value": "reward.currency", "new_value": "reward.currency", "clawback": "reward.currency"}
    fields = ["created_at", "refund", "action", "old_value", "new_value", "clawback"]
    readonly_fields = fields
    verbose_name = _("refund adjustment")
    verbose_name_plural = _("refund adjustments")


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept in the reward's audit trail."),
    )


class RewardVariantFilter(VariantFilter):
    """A reward counts for its referral's variant, else for its participant's variant in the program (the rollup's
    rule: milestone rewards have no referral)."""

    def condition(self, request, variant_id: int) -> Q:
        own_code = ReferralCode.objects.for_merchant(request.merchant).filter(
            program=OuterRef("program"), participant=OuterRef("participant"), variant_id=variant_id
        )
        return Q(referral__variant_id=variant_id) | Q(Q(referral__variant__isnull=True) & Exists(own_code))


@admin.register(Reward, site=merchant_admin)
class RewardAdmin(MoneyColumnsMixin, CsvExportMixin, TenantModelAdmin):
    """Looked at, filtered, exported; moved only by the actions, which call the rewards services."""

    money_columns = {"original_value": "currency"}

    list_display = [
        "participant_label", "value_label", "kind", "side", "status", "hold_until", "attention", "program", "order_id",
        "created_at",
    ]  # fmt: skip
    list_filter = ["status", "reason_code", "kind", "side", "program", RewardVariantFilter, "flag", "livemode"]
    list_select_related = ["participant", "program", "conversion"]
    search_fields = ["coupon_code", "participant__email", "participant__external_id", "conversion__order_id"]
    date_hierarchy = "created_at"
    inlines = [RewardEventInline, RewardAdjustmentInline]
    actions = ["release_now", "void", "reject"]  # plus "export selected rows as CSV" (CsvExportMixin)
    csv_columns = [
        ("id", "pk"), ("created_at", "created_at"), ("program", "program.slug"), ("participant_id", "participant_id"),
        ("participant_external_id", "participant.external_id"), ("participant_email", "participant.email"),
        ("side", "side"), ("kind", "kind"), ("value", "value"), ("taken_back", "taken_back"), ("unit", "unit"),
        ("currency", "currency"),
        ("status", "status"), ("coupon_code", "coupon_code"), ("hold_until", "hold_until"),
        ("issued_at", "issued_at"), ("order_id", "conversion.order_id"), ("reason", "reason"),
        ("reason_code", "reason_code"),
    ]  # fmt: skip
    fieldsets = (
        (None, {"fields": ("participant", "side", "program", "rule", "catalog_item", "livemode")}),
        (_("Reward"), {"fields": ("kind", "value_label", "original_value", "description", "coupon_code",
                                  "expires_at")}),
        (_("Status"), {"fields": ("status", "reason_code", "reason", "flag", "hold_until", "created_at",
                                  "approved_at", "issued_at", "redeemed_at", "ended_at")}),
        (_("Why"), {"fields": ("referral", "conversion", "milestone")}),
    )  # fmt: skip
    readonly_fields = [
        "participant", "side", "program", "rule", "catalog_item", "livemode", "kind", "value_label", "original_value",
        "description", "coupon_code", "expires_at", "status", "reason_code", "reason", "flag", "hold_until",
        "created_at", "approved_at", "issued_at", "redeemed_at", "ended_at", "referral", "conversion", "milestone",
    ]  # fmt: skip

    @admin.display(description=_("participant"), ordering="participant__email")
    def participant_label(self, obj):
        participant = obj.participant
        if participant.email and participant.name:
            return f"{participant.name} <{participant.email}>"
        return str(participant)

    @admin.display(description=_("value"), ordering="value")
    def value_label(self, obj):
        if obj.taken_back:
            return gettext("%(value)s (%(taken_back)s taken back)") % {
                "value": obj.display_value,
                "taken_back": format_money(obj.taken_back, obj.currency),
            }
        return obj.display_value or "—"

    @admin.display(description=_("needs attention"), ordering="flag")
    def attention(self, obj):
        return obj.get_flag_display() if obj.flag else ""

    @admin.display(description=_("order"), ordering="conversion__order_id")
    def order_id(self, obj):
        return obj.conversion.order_id if obj.conversion_id else ""

    # Status changes only through the services: nobody edits a reward's fields, staff who can write run actions.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request):
        return self._can_write(request)

    def _selected(self, request, queryset):
        rewards = list(queryset.select_related("participant", "program")[: MAX_ACTION_ROWS + 1])
        if len(rewards) > MAX_ACTION_ROWS:
            self.message_user(
                request,
                gettext("Select at most %(n)d rewards at a time.") % {"n": MAX_ACTION_ROWS},
                level=messages.ERROR,
            )
            return None
        return rewards

    @admin.action(description=_("Release now (end the hold and issue)"), permissions=["manage"])
    def release_now(self, request, queryset):
        rewards = self._selected(request, queryset)
        if rewards is None:
            return
        issued = 0
        for reward in rewards:
            if reward.status not in (Status.PENDING, Status.APPROVED):
                self.message_user(
                    request,
                    gettext("%(reward)s is %(status)s: only pending or approved rewards can be released.")
                    % {"reward": reward, "status": _lower_first(reward.get_status_display())},
                    level=messages.ERROR,
                )
                continue
            try:
                result = services.reward_release_early(reward=reward, actor=_actor(request))
            except ApplicationError as exc:
                self.message_user(request, f"{reward}: {exc.message}", level=messages.ERROR)
                continue
            if result == Status.ISSUED:
                issued += 1
            elif result == Status.APPROVED:
                self.message_user(
                    request,
                    gettext("%(reward)s is approved but its coupon pool is empty: upload codes and it is issued.")
                    % {"reward": reward},
                    level=messages.WARNING,
                )
            elif result in (Status.REJECTED, Status.VOIDED):
                reward.refresh_from_db(fields=["status", "reason"])
                self.message_user(
                    request,
                    gettext("%(reward)s was not released: %(reason)s")
                    % {"reward": reward, "reason": reward.reason or reward.get_status_display()},
                    level=messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    gettext("%(reward)s is being processed right now; look again in a moment.") % {"reward": reward},
                    level=messages.WARNING,
                )
        if issued:
            self.message_user(
                request, ngettext("%(n)d reward issued.", "%(n)d rewards issued.", issued) % {"n": issued}
            )

    def _move_with_reason(self, request, queryset, *, to: str, title, intro, submit):
        """First post: a confirmation page asking for the reason. Second post (with `apply`): the moves."""
        rewards = self._selected(request, queryset)
        if rewards is None:
            return None
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            done = 0
            for reward in rewards:
                try:
                    self._move(request, reward, to=to, reason=reason)
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{reward}: {exc.message}", level=messages.ERROR)
            if done:
                self.message_user(
                    request,
                    ngettext("%(n)d reward is now %(status)s.", "%(n)d rewards are now %(status)s.", done)
                    % {"n": done, "status": _lower_first(Status(to).label)},
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "submit_label": submit,
            "opts": self.opts,
            "rewards": rewards,
            "form": form,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/rewards/reward/reason_confirmation.html", context)

    def _move(self, request, reward: Reward, *, to: str, reason: str) -> None:
        end = services.reward_void if to == Status.VOIDED else services.reward_reject
        end(reward=reward, actor=_actor(request), reason=reason)

    @admin.action(description=_("Void the selected rewards…"), permissions=["manage"])
    def void(self, request, queryset):
        return self._move_with_reason(
            request,
            queryset,
            to=Status.VOIDED,
            title=gettext("Void rewards"),
            intro=gettext("Voided rewards are not paid and an issued coupon can no longer be redeemed. Why?"),
            submit=gettext("Void"),
        )

    @admin.action(description=_("Reject the selected rewards…"), permissions=["manage"])
    def reject(self, request, queryset):
        return self._move_with_reason(
            request,
            queryset,
            to=Status.REJECTED,
            title=gettext("Reject rewards"),
            intro=gettext("Rejected rewards (fraud, terms not met) are never released. Why?"),
            submit=gettext("Reject"),
        )


# --- coupon pools -----------------------------------------------------------------------------------------------


class CouponPoolForm(ScopedUniqueNameForm):
    class Meta:
        model = CouponPool
        fields = ["program", "name", "description"]


class PoolUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("One code per line, or a column named 'code'. Codes already in the pool are skipped."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is too large (at most 8 MB); split it into several uploads."))
        return upload


@admin.register(CouponPool, site=merchant_admin)
class CouponPoolAdmin(TenantModelAdmin):
    form = CouponPoolForm
    list_display = ["name", "program", "description", "free_codes", "assigned_codes", "upload_link"]
    list_filter = ["program"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("program")
            .annotate(
                free_count=Count("coupons", filter=Q(coupons__reward__isnull=True)),
                assigned_count=Count("coupons", filter=Q(coupons__reward__isnull=False)),
            )
            .order_by("name", "pk")  # a GROUP BY query drops Meta.ordering
        )

    @admin.display(description=_("free codes"), ordering="free_count")
    def free_codes(self, obj):
        return obj.free_count

    @admin.display(description=_("assigned codes"), ordering="assigned_count")
    def assigned_codes(self, obj):
        return obj.assigned_count

    @admin.display(description=_("codes"))
    def upload_link(self, obj):
        return format_html('<a href="{}">{}</a>', self._upload_url(obj), gettext("Upload codes (CSV)"))

    def _upload_url(self, pool) -> str:
        return reverse(f"{self.admin_site.name}:rewards_couponpool_upload", args=[pool.pk])

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="rewards_couponpool_upload",
            ),
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_upload": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def upload_view(self, request, object_id):
        pool = self.get_object(request, object_id)
        if pool is None:
            raise Http404
        if not self.has_change_permission(request, pool):
            raise PermissionDenied
        form = PoolUploadForm(request.POST, request.FILES) if request.method == "POST" else PoolUploadForm()
        if form.is_bound and form.is_valid():
            try:
                added, skipped = services.pool_upload(pool=pool, data=form.cleaned_data["file"].read())
            except ApplicationError as exc:
                form_add_domain_error(form, exc, "file")
            else:
                self.message_user(
                    request,
                    gettext("Added %(added)d, skipped %(skipped)d duplicates.") % {"added": added, "skipped": skipped},
                )
                waiting = (
                    Reward.objects.for_merchant(request.merchant)
                    .filter(status=Status.APPROVED, flag=Reward.Flag.POOL_EMPTY)
                    .filter(Q(rule__pool=pool) | Q(catalog_item__pool=pool))
                    .count()
                )
                if waiting and added:
                    self.message_user(
                        request,
                        ngettext(
                            "%(n)d reward was waiting for a code from this pool; it gets one within a minute.",
                            "%(n)d rewards were waiting for a code from this pool; they get one within a minute.",
                            waiting,
                        )
                        % {"n": waiting},
                    )
                return redirect(reverse(f"{self.admin_site.name}:rewards_couponpool_change", args=[pool.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Upload codes to %(pool)s") % {"pool": pool},
            "opts": self.opts,
            "original": pool,
            "form": form,
            "free": Coupon.objects.for_merchant(request.merchant).filter(pool=pool, reward__isnull=True).count(),
        }
        return TemplateResponse(request, "admin/rewards/couponpool/upload.html", context)


class AssignedFilter(admin.EmptyFieldListFilter):
    """Free codes (no reward yet) or assigned ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = _("assigned")

    def choices(self, changelist):
        for lookup, title in ((None, _("All")), ("1", _("Free")), ("0", _("Assigned to a reward"))):
            yield {
                "selected": self.lookup_val == lookup,
                "query_string": changelist.get_query_string({self.lookup_kwarg: lookup}),
                "display": title,
            }


@admin.register(Coupon, site=merchant_admin)
class CouponAdmin(ReadOnlyTenantAdmin):
    list_display = ["code", "pool", "reward", "assigned_at", "created_at"]
    list_filter = ["pool", ("reward", AssignedFilter)]
    list_select_related = ["pool", "reward__participant"]
    search_fields = ["code"]
    fields = ["code", "pool", "reward", "assigned_at", "created_at"]
    readonly_fields = fields
    show_full_result_count = False  # pools hold up to 100,000 codes each


# --- points catalog ---------------------------------------------------------------------------------------------


class CatalogItemForm(ScopedUniqueNameForm):
    class Meta:
        model = CatalogItem
        fields = [
            "program", "name", "description", "points", "kind", "value", "pool", "coupon_valid_days", "active",
            "position",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        _check_pool(self, kind=kind, pool=data.get("pool"), program=data.get("program"))
        _check_coupon_days(self, data.get("coupon_valid_days"))
        if kind in (Kind.AMOUNT_COUPON, Kind.PERCENT_COUPON, Kind.STORE_CREDIT) and value is not None:
            if value <= 0:
                self.add_error("value", _("Enter a value greater than zero."))
            elif kind == Kind.PERCENT_COUPON and value > 100:
                self.add_error("value", _("A percent-off coupon is between 0 and 100 (%)."))
        if kind in ITEM_KINDS and not (data.get("description") or "").strip():
            self.add_error("description", _("Describe the product or experience: the customer sees this."))
        return data


@admin.register(CatalogItem, site=merchant_admin)
class CatalogItemAdmin(TenantModelAdmin):
    form = CatalogItemForm
    list_display = ["name", "program", "points", "gives", "active", "position"]
    list_filter = ["program", "kind", "active"]
    list_select_related = ["program", "pool"]
    search_fields = ["name", "description"]
    fieldsets = (
        (None, {"fields": ("program", "name", "description", "points")}),
        (_("What it gives"), {"fields": ("kind", "value", "pool", "coupon_valid_days")}),
        (_("Shown"), {"fields": ("active", "position")}),
    )

    @admin.display(description=_("gives"))
    def gives(self, obj):
        unit = obj.unit
        if unit == Unit.MONEY:
            amount = f"{_number(obj.value)} {obj.program.currency}"
        elif unit == Unit.PERCENT:
            amount = f"{_number(obj.value)}%"
        else:
            amount = obj.description or (obj.pool.description if obj.pool_id else "")
        kind = obj.get_kind_display()
        return f"{amount}, {_lower_first(kind)}" if amount else kind


# --- ledger and cash due ----------------------------------------------------------------------------------------


class PayoutForm(forms.Form):
    program = forms.ModelChoiceField(label=_("program"), queryset=Program.all_merchants.none(), empty_label=None)
    amount = forms.DecimalField(label=_("amount paid"), max_digits=15, decimal_places=3)
    note = forms.CharField(
        label=_("note"), max_length=300, required=False, help_text=_("e.g. the bank transfer's reference")
    )

    def __init__(self, *args, programs, due: Decimal, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.due, self.currency = due, currency
        self.fields["program"].queryset = programs
        shown = format_amount(due, currency)  # in the currency's decimals: "1,299" JPY, "12.50" PLN
        self.fields["amount"].help_text = gettext("At most %(due)s %(currency)s.") % {
            "due": shown,
            "currency": currency,
        }
        self.fields["amount"].widget.attrs["step"] = str(Decimal(1).scaleb(-currency_decimals(currency)))
        if "amount" in self.initial:
            self.initial["amount"] = quantize_money(self.initial["amount"], currency)


@admin.register(LedgerEntry, site=merchant_admin)
class LedgerEntryAdmin(CsvExportMixin, ReadOnlyTenantAdmin):
    list_display = ["created_at", "participant", "account", "kind", "amount_label", "program", "reward", "note"]
    list_filter = ["account", "kind", "program", "livemode"]
    list_select_related = ["participant", "program", "reward__participant"]
    search_fields = ["participant__email", "participant__external_id", "note"]
    date_hierarchy = "created_at"
    fields = [
        "participant", "program", "account", "kind", "amount_label", "reward", "refund", "note", "created_by",
        "created_at", "livemode",
    ]  # fmt: skip
    readonly_fields = fields
    change_list_template = "admin/rewards/ledgerentry/change_list.html"  # "Cash due" next to "Export CSV"
    csv_columns = [
        ("id", "pk"), ("created_at", "created_at"), ("program", "program.slug"), ("participant_id", "participant_id"),
        ("participant_external_id", "participant.external_id"), ("participant_email", "participant.email"),
        ("account", "account"), ("kind", "kind"), ("amount", "amount"), ("currency", "currency"),
        ("reward_id", "reward_id"), ("note", "note"),
    ]  # fmt: skip

    @admin.display(description=_("amount"), ordering="amount")
    def amount_label(self, obj):
        if obj.account == LedgerEntry.Account.POINTS:
            return f"{int(obj.amount):+d} pts"
        return f"{'+' if obj.amount > 0 else ''}{format_money(obj.amount, obj.currency)}"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "cash_due_url": reverse(f"{self.admin_site.name}:rewards_cash_due")}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        custom = [
            path("cash-due/", self.admin_site.admin_view(self.cash_due_view), name="rewards_cash_due"),
            path(
                "cash-due/<int:participant_id>/payout/",
                self.admin_site.admin_view(self.payout_view),
                name="rewards_cash_payout",
            ),
        ]
        return custom + super().get_urls()

    def _program_filter(self, request):
        wanted = request.GET.get("program", "")
        if not wanted:
            return None
        program = Program.objects.for_merchant(request.merchant).filter(pk=wanted).first() if is_id(wanted) else None
        if program is None:
            raise Http404
        return program

    def cash_due_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        program = self._program_filter(request)
        due = selectors.cash_due(merchant=request.merchant, program=program)
        if request.GET.get("format") == "csv":
            header = ["participant_id", "external_id", "email", "name", "currency", "amount_due"]
            rows = (
                [r[key] for key in ("participant_id", "participant__external_id", "participant__email",
                                    "participant__name", "currency", "due")]
                for r in due.iterator(2000)
            )  # fmt: skip
            return stream_csv(rows, header=header, filename=f"cash-due-{timezone.localdate().isoformat()}.csv")
        rows = list(due[:1000])
        totals: dict[str, Decimal] = {}
        for row in rows:
            totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + row["due"]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Cash due"),
            "opts": self.opts,
            "rows": rows,
            "truncated": len(rows) == 1000,
            "totals": sorted(totals.items()),
            "programs": Program.objects.for_merchant(request.merchant).order_by("name"),
            "program": program,
            "can_pay": self._can_write(request),
            "csv_query": urlencode({"program": program.pk, "format": "csv"} if program else {"format": "csv"}),
        }
        return TemplateResponse(request, "admin/rewards/ledgerentry/cash_due.html", context)

    def payout_view(self, request, participant_id: int):
        participant = Participant.objects.for_merchant(request.merchant).filter(pk=participant_id).first()
        if participant is None:
            raise Http404
        if not self._can_write(request):
            raise PermissionDenied
        currency = request.GET.get("currency", "")
        if not is_currency(currency):
            raise Http404  # the cash-due page links here with the currency owed; anything else is a bad address
        back = reverse(f"{self.admin_site.name}:rewards_cash_due")
        programs = Program.objects.for_merchant(request.merchant).filter(
            currency=currency,
            pk__in=LedgerEntry.objects.for_merchant(request.merchant)
            .filter(participant=participant, account=LedgerEntry.Account.CASH, livemode=True)
            .values("program_id"),
        )
        # What is due, shown and offered; the payout service checks the amount again against it, under a lock.
        due = selectors.cash_due_to(participant=participant, currency=currency)
        if due <= 0:
            self.message_user(
                request,
                gettext("Nothing is due to %(who)s in %(currency)s.") % {"who": participant, "currency": currency},
                level=messages.WARNING,
            )
            return redirect(back)
        form = PayoutForm(
            request.POST if request.method == "POST" else None,
            programs=programs,
            due=due,
            currency=currency,
            initial={"amount": due, "program": programs.order_by("pk").first()},
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.cash_payout_record(
                    participant=participant,
                    program=form.cleaned_data["program"],
                    amount=form.cleaned_data["amount"],
                    user=request.user,
                    note=form.cleaned_data["note"],
                )
            except ApplicationError as exc:
                form_add_domain_error(form, exc, "amount")
            else:
                self.message_user(
                    request,
                    gettext("Recorded a payout of %(amount)s %(currency)s to %(who)s.")
                    % {
                        "amount": format_amount(form.cleaned_data["amount"], currency),
                        "currency": currency,
                        "who": participant,
                    },
                )
                return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Record a payout to %(who)s") % {"who": participant},
            "opts": self.opts,
            "participant": participant,
            "due": due,
            "currency": currency,
            "form": form,
            "back": back,
        }
        return TemplateResponse(request, "admin/rewards/ledgerentry/payout.html", context)


for model in (RewardRule, Reward, RewardEvent, RewardAdjustment, CouponPool, Coupon, CatalogItem, LedgerEntry):
    ops_admin.register(model, list_display=["__str__", "merchant"], list_filter=["merchant"])
