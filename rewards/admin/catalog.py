"""The points catalog: what points buy in a program; written through the catalog service."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from referral_saas.tenancy.admin_site import (
    ServiceSavedAdminMixin,
    TenantModelAdmin,
    merchant_admin,
)
from rewards import services
from rewards.admin.common import PoolChoicesMixin, ServiceValidatedForm, lower_first, plain_number
from rewards.models import CatalogItem, Unit
from rewards.services.catalog import CATALOG_ITEM_FIELDS


class CatalogItemForm(ServiceValidatedForm):
    validate = staticmethod(services.catalog_item_validate)

    class Meta:
        model = CatalogItem
        fields = [
            "program", "name", "description", "points", "kind", "value", "pool", "coupon_valid_days", "active",
            "position",
        ]  # fmt: skip


@admin.register(CatalogItem, site=merchant_admin)
class CatalogItemAdmin(PoolChoicesMixin, ServiceSavedAdminMixin, TenantModelAdmin):
    """Saved through the catalog service (which checks again what the form checked)."""

    form = CatalogItemForm
    save_fields = CATALOG_ITEM_FIELDS
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

    def create_object(self, request, **fields):
        return services.catalog_item_create(merchant=request.merchant, **fields)

    def update_object(self, request, obj, **fields):
        services.catalog_item_update(item=obj, **fields)
