"""Rewards: the list, the export, the audit trail, and the actions (release now, void, reject) that move them through
the rewards services only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from programs.admin import VariantFilter
from referral_saas.admin_money import MoneyColumnsMixin
from referral_saas.csv_export import CsvExportMixin
from referral_saas.errors import ApplicationError
from referral_saas.money import format_money
from referral_saas.tenancy.admin_site import ReadOnlyTenantInline, TenantModelAdmin, merchant_admin
from rewards import services
from rewards.admin.common import lower_first, staff_actor
from rewards.models import Reward, RewardAdjustment, RewardEvent
from tracking.models import ReferralCode

Status = Reward.Status
MAX_ACTION_ROWS = 500  # a confirmation page lists every row, and each move is its own transaction


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
        label=capfirst(_("reason")),
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
                    % {"reward": reward, "status": lower_first(reward.get_status_display())},
                    level=messages.ERROR,
                )
                continue
            try:
                result = services.reward_release_early(reward=reward, actor=staff_actor(request))
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
                    % {"n": done, "status": lower_first(Status(to).label)},
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
        end(reward=reward, actor=staff_actor(request), reason=reason)

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
