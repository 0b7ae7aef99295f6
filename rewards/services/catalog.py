"""The points catalog: what makes an item valid, and the one way to write one (the admin, and any other writer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from referral_saas.errors import ValidationFailed
from referral_saas.tenancy.models import Merchant
from rewards.models import MONEY_KINDS, CatalogItem, Kind
from rewards.services.rules import ITEM_KINDS, checked_save, coupon_days_errors, decimals_error, pool_errors

CATALOG_ITEM_FIELDS = frozenset(
    {"program", "name", "description", "points", "kind", "value", "pool", "coupon_valid_days", "active", "position"}
)


def catalog_item_validate(*, merchant: Merchant, values: Mapping[str, Any]) -> None:
    """Raise ValidationFailed (errors per field) unless `values` make an item the points redemption can pay:

    - the program and pool are this merchant's, and the pool is the item's program's;
    - a pool only with (and always with) a pool coupon; a coupon is valid for at least a day;
    - an amount-off or percent-off coupon or store credit is worth more than zero, a percent-off at most 100, and an
      amount has the program's currency decimals;
    - a free product or custom item has a description (the customer sees it).

    A value missing from `values` (a form field that failed its own validation) is not checked again.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(str(message))

    program, pool, kind, value = values.get("program"), values.get("pool"), values.get("kind"), values.get("value")
    for field, row in (("program", program), ("pool", pool)):
        if row is not None and row.merchant_id != merchant.pk:
            add(field, _("Select a valid choice. That choice is not one of the available choices."))
    if errors:
        raise ValidationFailed(fields=errors)

    for message in pool_errors(kind=kind, pool=pool, program=program):
        add("pool", message)
    for message in coupon_days_errors(values.get("coupon_valid_days")):
        add("coupon_valid_days", message)
    if kind in (Kind.AMOUNT_COUPON, Kind.PERCENT_COUPON, Kind.STORE_CREDIT) and value is not None:
        if value <= 0:
            add("value", _("Enter a value greater than zero."))
        elif kind == Kind.PERCENT_COUPON and value > 100:
            add("value", _("A percent-off coupon is between 0 and 100 (%)."))
        elif kind in MONEY_KINDS and program is not None and (message := decimals_error(value, program.currency)):
            add("value", message)
    if kind in ITEM_KINDS and not (values.get("description") or "").strip():
        add("description", _("Describe the product or experience: the customer sees this."))
    if errors:
        raise ValidationFailed(fields=errors)


def catalog_item_create(*, merchant: Merchant, **fields: Any) -> CatalogItem:
    """A new item of one of the merchant's programs, written only if catalog_item_validate accepts it (and its fields
    their own checks: lengths, choices, a price of at least 1 point); a name taken in the program is a `name` error.
    `fields` are CatalogItem's editable fields (CATALOG_ITEM_FIELDS); those left out take the model's defaults."""
    unknown = set(fields) - CATALOG_ITEM_FIELDS
    if unknown:
        raise TypeError(f"catalog_item_create() got unexpected fields: {', '.join(sorted(unknown))}")
    return checked_save(
        CatalogItem(merchant=merchant, **fields), fields=CATALOG_ITEM_FIELDS, validate=catalog_item_validate
    )


def catalog_item_update(*, item: CatalogItem, **fields: Any) -> CatalogItem:
    """Change an item, under the same rules as catalog_item_create. Rewards already bought keep what they gave."""
    unknown = set(fields) - CATALOG_ITEM_FIELDS
    if unknown:
        raise TypeError(f"catalog_item_update() got unexpected fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(item, name, value)
    return checked_save(item, fields=CATALOG_ITEM_FIELDS, validate=catalog_item_validate)
