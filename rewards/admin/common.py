"""What the rewards admin pages share: numbers and labels in words, the actor of a staff move, and a form that
checks a name is free in its program (the merchant is set by the admin, so Django cannot)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from referral_saas.errors import ValidationFailed
from referral_saas.tenancy.admin_site import TenantModelForm, form_add_field_errors


def plain_number(value: Decimal | None) -> str:
    """10.00 -> "10", 12.50 -> "12.50": whole numbers without decimals, others as stored."""
    if value is None:
        return ""
    return str(int(value)) if value == value.to_integral_value() else f"{value:f}"


def lower_first(text) -> str:
    text = str(text)
    return text[:1].lower() + text[1:]


def staff_actor(request) -> str:
    return f"user:{request.user.email}"


class ScopedUniqueNameForm(TenantModelForm):
    """Rules, pools and catalog items: a name is unique within its program."""

    unique_messages = {
        name: _("This program already has one with this name.")
        for name in ("reward_rule_unique_name", "coupon_pool_unique_name", "catalog_item_unique_name")
    }


class ServiceValidatedForm(ScopedUniqueNameForm):
    """A form whose rules are a service's: `validate(merchant=, values=)` raises ValidationFailed per field, shown
    on the form's fields (rules and catalog items; the admin then saves through the service, which checks again)."""

    validate: Callable[..., None]

    def clean(self):
        data = super().clean()
        if self.merchant is None:  # pragma: no cover - the admin sets it (TenantModelAdmin.get_form)
            return data
        try:
            self.validate(merchant=self.merchant, values=data)
        except ValidationFailed as exc:
            form_add_field_errors(self, exc)
        return data


class PoolChoicesMixin:
    """For the admins of rules and catalog items: the pool choices say which program each pool is of."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("variant", "pool"):
            # Both are labelled with their program ("Spring / B", "Spring: 15% codes"): one query, not one per option.
            formfield.queryset = formfield.queryset.select_related("program")
        if db_field.name == "pool":
            formfield.label_from_instance = lambda pool: f"{pool.program.name}: {pool.name}"
        return formfield
