"""Reward rules: what makes one valid, and the one way to write one (the admin, createmerchant, seeding); the
checked save that catalog items share."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _

from referral_saas.errors import ValidationFailed
from referral_saas.money import currency_decimals, fits_currency
from referral_saas.tenancy.models import Merchant
from rewards.models import MONEY_KINDS, Kind, RewardRule, Side, Unit

Trigger = RewardRule.Trigger
ValueType = RewardRule.ValueType
RowT = TypeVar("RowT", bound=models.Model)
ITEM_KINDS = frozenset({Kind.FREE_PRODUCT, Kind.CUSTOM})
RULE_FIELDS = frozenset(
    {
        "name", "program", "variant", "side", "trigger", "max_purchases", "milestone", "kind", "value_type", "value",
        "max_value", "description", "pool", "coupon_prefix", "coupon_valid_days", "min_order_value", "hold_days",
        "cap_per_month", "cap_total", "valid_from", "valid_until", "active",
    }
)  # fmt: skip


def decimals_error(amount, currency: str) -> str:
    """Why this amount can't be in this currency (more decimals than it has), or ""."""
    if fits_currency(amount, currency):
        return ""
    return _("%(currency)s has %(n)d decimal places.") % {"currency": currency, "n": currency_decimals(currency)}


def pool_errors(*, kind: str | None, pool, program) -> list[str]:
    """A pool goes with 'Coupon from an uploaded pool' only, and comes from the same program (rules and catalog)."""
    if kind == Kind.POOL_COUPON and pool is None:
        return [_("Choose the coupon pool the codes come from.")]
    if pool is not None and kind != Kind.POOL_COUPON:
        return [_("A pool is only used with 'Coupon from an uploaded pool'; leave it empty.")]
    if pool is not None and program is not None and pool.program_id != program.pk:
        return [_("This pool belongs to another program; choose a pool of %(program)s.") % {"program": program}]
    return []


def coupon_days_errors(days: int | None) -> list[str]:
    if days == 0:
        return [_("A coupon is valid for at least 1 day; leave it empty for no expiry.")]
    return []


def reward_rule_validate(*, merchant: Merchant, values: Mapping[str, Any]) -> None:
    """Raise ValidationFailed (errors per field) unless `values` make a rule the engine can pay:

    - the program, its variant and pool are this merchant's, and variant and pool belong to the rule's program;
    - a milestone needs its count and rewards the referrer; a count or "up to N purchases" only with their trigger;
    - a pool only with (and always with) a pool coupon; a coupon is valid for at least a day; a coupon prefix is
      letters, digits and dashes (customers type it);
    - a percentage of the order needs an order (not a sign-up or a milestone) and an amount (coupon, credit, cash,
      points); "at most" only caps such a percentage; a percentage and a percent-off coupon are at most 100;
    - a value is above zero, except for a free product or custom reward, which needs a description instead;
    - amounts have the program's currency decimals, points are whole; the offer ends after it starts.

    A value missing from `values` (a form field that failed its own validation) is not checked again.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(str(message))

    program, variant, pool = values.get("program"), values.get("variant"), values.get("pool")
    kind, value_type, value = values.get("kind"), values.get("value_type"), values.get("value")
    trigger, side = values.get("trigger"), values.get("side")

    for field, row in (("program", program), ("variant", variant), ("pool", pool)):
        if row is not None and row.merchant_id != merchant.pk:
            add(field, _("Select a valid choice. That choice is not one of the available choices."))
    if errors:
        raise ValidationFailed(fields=errors)

    if variant is not None and program is not None and variant.program_id != program.pk:
        message = _("This variant belongs to another program; choose a variant of %(program)s.")
        add("variant", message % {"program": program})

    if trigger == Trigger.MILESTONE:
        if not values.get("milestone"):
            add("milestone", _("Enter how many successful referrals reach this milestone."))
        if side == Side.REFEREE:
            add("side", _("Milestones reward the referrer: choose 'Referrer'."))
    elif values.get("milestone"):
        add("milestone", _("A milestone is only used when the referrer reaches a number of successful referrals."))
    if values.get("max_purchases") is not None and trigger != Trigger.EACH_PURCHASE:
        add("max_purchases", _("Only used with 'each purchase'; leave it empty."))

    for message in pool_errors(kind=kind, pool=pool, program=program):
        add("pool", message)
    for message in coupon_days_errors(values.get("coupon_valid_days")):
        add("coupon_valid_days", message)
    if not re.fullmatch(r"[A-Za-z0-9-]*", values.get("coupon_prefix") or ""):
        add("coupon_prefix", _("Letters, digits and dashes only: customers type the code at checkout."))

    percent_of_order = value_type == ValueType.PERCENT_OF_ORDER
    if percent_of_order and trigger in (Trigger.MILESTONE, Trigger.SIGNUP):
        add("value_type", _("A sign-up or a milestone has no order to take a percentage of: use a fixed value."))
    elif percent_of_order and kind and kind not in MONEY_KINDS | {Kind.POINTS}:
        add(
            "value_type",
            _("A percentage of the order works for amount-off coupons, store credit, cash and points only."),
        )
    if kind in ITEM_KINDS:
        if not values.get("description"):
            add("description", _("Describe the product or experience: the customer sees this."))
    elif kind and value is not None:
        if value <= 0:
            add("value", _("Enter a value greater than zero."))
        elif kind == Kind.PERCENT_COUPON and value > 100:
            add("value", _("A percent-off coupon is between 0 and 100 (%)."))
        elif percent_of_order and kind in MONEY_KINDS and value > 100:
            add("value", _("A percentage of the order is at most 100."))
    if values.get("max_value") is not None and not percent_of_order:
        add("max_value", _("'At most' caps a percentage of the order; leave it empty."))

    # Amounts in the program's currency have its decimals (no 9.995 PLN, no 99.50 JPY); points are whole.
    if program is not None:
        amounts = {"min_order_value": Unit.MONEY}
        if kind in MONEY_KINDS:
            amounts.update({"max_value": Unit.MONEY} if percent_of_order else {"value": Unit.MONEY})
        elif kind == Kind.POINTS:
            amounts.update({"max_value": Unit.POINTS} if percent_of_order else {"value": Unit.POINTS})
        for field, unit in amounts.items():
            amount = values.get(field)
            if amount is None or field in errors:
                continue
            if unit == Unit.POINTS and amount != amount.to_integral_value():
                add(field, _("Points are whole numbers."))
            elif unit == Unit.MONEY and (message := decimals_error(amount, program.currency)):
                add(field, message)

    starts, ends = values.get("valid_from"), values.get("valid_until")
    if starts and ends and ends <= starts:
        add("valid_until", _("The offer must end after it starts."))
    if errors:
        raise ValidationFailed(fields=errors)


def reward_rule_create(*, merchant: Merchant, **fields: Any) -> RewardRule:
    """A new rule of one of the merchant's programs, written only if reward_rule_validate accepts it (and its fields
    their own checks: lengths, choices); a name taken in the program is a `name` error. `fields` are RewardRule's
    editable fields (RULE_FIELDS); those left out take the model's defaults."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise TypeError(f"reward_rule_create() got unexpected fields: {', '.join(sorted(unknown))}")
    return _save(RewardRule(merchant=merchant, **fields))


def reward_rule_update(*, rule: RewardRule, **fields: Any) -> RewardRule:
    """Change a rule's terms, under the same rules as reward_rule_create. Rewards already made keep the terms they
    were made with."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise TypeError(f"reward_rule_update() got unexpected fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(rule, name, value)
    return _save(rule)


def _save(rule: RewardRule) -> RewardRule:
    return checked_save(rule, fields=RULE_FIELDS, validate=reward_rule_validate)


def checked_save(row: RowT, *, fields: frozenset[str], validate: Callable[..., None]) -> RowT:
    """Save a rule or catalog item of `row.merchant` only if its fields pass their own checks (lengths, choices)
    and `validate(merchant=..., values=...)`: one ValidationFailed with every field's errors, else the row saved. A
    name taken in the program is a `name` error, also when someone else saved it since the check."""
    merchant = row.merchant
    errors: dict[str, list[str]] = {}
    try:
        row.full_clean(exclude=["merchant"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
    values = {name: getattr(row, name) for name in fields if name not in errors}
    try:
        validate(merchant=merchant, values=values)
    except ValidationFailed as exc:
        for field, messages in exc.fields.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationFailed(fields=errors)
    name_taken = _("This program already has one with this name.")
    scope = type(row).objects.for_merchant(merchant).filter(program=row.program, name=row.name)
    if scope.exclude(pk=row.pk).exists():
        raise ValidationFailed(fields={"name": [name_taken]})
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        if not scope.exclude(pk=row.pk).exists():
            raise
        raise ValidationFailed(fields={"name": [name_taken]}) from None  # saved by someone else since the check
    return row
