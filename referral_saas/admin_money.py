"""Admin pages show stored amounts in their currency's decimals ("129.90" PLN, "1.250" KWD, "1,500" JPY).

Amounts are stored with three decimals (numeric(15, 3)); Django's admin would print every one of them with three
("129.900"). An admin lists the money fields it shows with the attribute that holds their currency, and this mixin
shows them (in lists and on read-only pages) through the same formatting as the rest of the admin.
"""

from __future__ import annotations

import functools
from decimal import Decimal

from referral_saas.money import format_amount


def _attribute(obj, dotted: str):
    for name in dotted.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


@functools.cache
def money_column(model, field: str, currency: str | None):
    """An admin column / read-only field for `model.field`: in the currency read from the attribute `currency`
    ("program.currency" for a related row), or, with currency None, a rate as it was given (no trailing zeros)."""
    model_field = model._meta.get_field(field)

    def show(obj):
        value = getattr(obj, field)
        if value is None:
            return None
        code = _attribute(obj, currency) if currency else None
        if code:
            return format_amount(value, code)
        return f"{Decimal(value).normalize():f}"

    show.short_description = model_field.verbose_name
    show.admin_order_field = field
    show.__name__ = f"{field}_shown"
    return show


class MoneyColumnsMixin:
    """`money_columns = {"amount": "currency", ...}`: these fields, wherever the admin only shows them (the list,
    a read-only page or field), are shown in their currency's decimals. Editable form fields are left as they are."""

    money_columns: dict[str, str | None] = {}

    def _shown(self, names, *, only=None):
        return [
            money_column(self.model, name, self.money_columns[name])
            if isinstance(name, str) and name in self.money_columns and (only is None or name in only)
            else name
            for name in names
        ]

    def get_list_display(self, request):
        return self._shown(super().get_list_display(request))

    def get_readonly_fields(self, request, obj=None):
        return self._shown(super().get_readonly_fields(request, obj))

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not self.has_change_permission(request, obj):
            return self._shown(fields)  # a read-only page: every field is shown, not edited
        readonly = super().get_readonly_fields(request, obj)
        return self._shown(fields, only=set(readonly))
