"""What the rewards admin pages share: numbers and labels in words, the actor of a staff move, and a form that
checks a name is free in its program (the merchant is set by the admin, so Django cannot)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _


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
