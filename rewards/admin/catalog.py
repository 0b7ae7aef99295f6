"""The points catalog: what points buy in a program."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from referral_saas.tenancy.admin_site import TenantModelAdmin, merchant_admin
from rewards.admin.common import ScopedUniqueNameForm, check_coupon_days, check_pool, lower_first, plain_number
from rewards.models import CatalogItem, Kind, Unit

ITEM_KINDS = frozenset({Kind.FREE_PRODUCT, Kind.CUSTOM})


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
        check_pool(self, kind=kind, pool=data.get("pool"), program=data.get("program"))
        check_coupon_days(self, data.get("coupon_valid_days"))
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
            amount = f"{plain_number(obj.value)} {obj.program.currency}"
        elif unit == Unit.PERCENT:
            amount = f"{plain_number(obj.value)}%"
        else:
            amount = obj.description or (obj.pool.description if obj.pool_id else "")
        kind = obj.get_kind_display()
        return f"{amount}, {lower_first(kind)}" if amount else kind
