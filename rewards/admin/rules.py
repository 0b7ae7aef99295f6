"""Reward rules: the list with each rule in one line of words, and the form that saves through the rules service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from referral_saas.tenancy.admin_site import (
    ServiceSavedAdminMixin,
    TenantModelAdmin,
    merchant_admin,
)
from rewards import selectors, services
from rewards.admin.common import PoolChoicesMixin, ServiceValidatedForm, lower_first, plain_number
from rewards.models import RewardRule, Unit
from rewards.services.rules import RULE_FIELDS

Trigger = RewardRule.Trigger
ValueType = RewardRule.ValueType


def rule_summary(rule: RewardRule) -> str:
    """One line a person reads: "10% of the order, max 50 PLN, amount-off coupon → referrer, first purchase,
    hold 30 d"."""
    currency = rule.program.currency
    unit = rule.unit
    if rule.value_type == ValueType.PERCENT_OF_ORDER and unit in (Unit.MONEY, Unit.POINTS):
        what = gettext("%(n)s%% of the order") % {"n": plain_number(rule.value)}
        if rule.max_value is not None:
            cap = f"{plain_number(rule.max_value)} {currency}" if unit == Unit.MONEY else f"{int(rule.max_value)} pts"
            what += ", " + gettext("max %(cap)s") % {"cap": cap}
    elif unit == Unit.MONEY:
        what = f"{plain_number(rule.value)} {currency}"
    elif unit == Unit.PERCENT:
        what = f"{plain_number(rule.value)}%"
    elif unit == Unit.POINTS:
        what = f"{int(rule.value)} pts"
    else:
        what = rule.description or (rule.pool.description if rule.pool_id else "")
    kind = lower_first(rule.get_kind_display())
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
    parts = [f"{head} → {lower_first(rule.get_side_display())}", when]
    if rule.min_order_value is not None:
        minimum = f"{plain_number(rule.min_order_value)} {currency}"
        parts.append(gettext("orders from %(amount)s") % {"amount": minimum})
    parts.append(gettext("hold %(n)d d") % {"n": rule.hold_days} if rule.hold_days else gettext("no hold"))
    if rule.cap_per_month:
        parts.append(gettext("max %(n)d a month") % {"n": rule.cap_per_month})
    if rule.cap_total:
        parts.append(gettext("max %(n)d in total") % {"n": rule.cap_total})
    return ", ".join(parts)


class RewardRuleForm(ServiceValidatedForm):
    validate = staticmethod(services.reward_rule_validate)

    class Meta:
        model = RewardRule
        fields = [
            "name", "program", "variant", "side", "trigger", "max_purchases", "milestone", "kind", "value_type",
            "value", "max_value", "description", "pool", "coupon_prefix", "coupon_valid_days", "min_order_value",
            "hold_days", "cap_per_month", "cap_total", "valid_from", "valid_until", "active",
        ]  # fmt: skip


@admin.register(RewardRule, site=merchant_admin)
class RewardRuleAdmin(PoolChoicesMixin, ServiceSavedAdminMixin, TenantModelAdmin):
    """Saved through the rules service (which validates again): a refusal is shown on the form, nothing saved."""

    form = RewardRuleForm
    save_fields = RULE_FIELDS

    class Media:
        js = ["js/rule-form.js"]  # the fields that matter for the chosen kind, trigger and value type

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

    def create_object(self, request, **fields):
        return services.reward_rule_create(merchant=request.merchant, **fields)

    def update_object(self, request, obj, **fields):
        services.reward_rule_update(rule=obj, **fields)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.pk:  # saved (a refusal is on the form): what the program's rules now get wrong, as warnings
            for warning in selectors.program_setup_warnings(program=obj.program):
                messages.warning(request, warning)
