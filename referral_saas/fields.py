"""Serializer fields for money: amounts are strings of a Decimal ("129.90"), currencies ISO-4217 codes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from referral_saas.money import MAX_AMOUNT, currency_decimals, is_currency


@extend_schema_field({"type": "string", "pattern": r"^\d{1,10}(\.\d{1,2})?$", "example": "129.90"})
class AmountField(serializers.Field):
    """A positive amount up to 10^9 given as a string ("129.90"); integers are accepted, floats are not."""

    default_error_messages = {
        "invalid": 'Give the amount as a string of digits, e.g. "129.90".',
        "not_positive": "The amount must be greater than zero.",
        "too_large": "The amount must be at most 1000000000.",
    }

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        text = str(data).strip()
        if not text or len(text) > 32 or not text.isascii() or not all(ch.isdigit() or ch in ".-" for ch in text):
            self.fail("invalid")
        try:
            value = Decimal(text)
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value <= 0:
            self.fail("not_positive")
        if value > MAX_AMOUNT:
            self.fail("too_large")
        return value

    def to_representation(self, value) -> str:
        return f"{value:.2f}" if value is not None else None


@extend_schema_field(OpenApiTypes.STR)
class CurrencyField(serializers.CharField):
    default_error_messages = {"unknown": "Unknown currency: give an ISO-4217 code such as PLN, EUR or USD."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data).upper()
        if not is_currency(value):
            self.fail("unknown")
        return value


def check_amount_precision(amount: Decimal, currency: str, field: str = "amount") -> None:
    """JPY has no decimals, PLN two: more decimals than the currency has is a mistake, not a rounding job."""
    places = currency_decimals(currency)
    if amount.as_tuple().exponent < -places:
        raise serializers.ValidationError({field: [f"{currency} amounts have at most {places} decimal places."]})


class KeyField(serializers.CharField):
    """A shop's own id (order, refund): up to 128 characters, no control characters (it is addressed in URLs and
    printed in lists; a tab or a newline in it is a bug on the caller's side). Slashes are fine."""

    default_error_messages = {"control": "Must not contain control characters (tabs, newlines, ...)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 128)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            self.fail("control")
        return value
