"""Serializer fields for money: amounts are strings of a Decimal ("129.90"), currencies ISO-4217 codes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from referral_saas.money import MAX_AMOUNT, currency_decimals, is_currency, quantize


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{1,10}(\.\d{1,3})?$",
        "example": "129.90",
        "description": 'With at most the currency\'s decimals: "129.90" PLN, "1500" JPY, "12.345" KWD.',
    }
)
class AmountField(serializers.Field):
    """A positive amount up to 10^9 given as a string ("129.90"); integers are accepted, floats are not. How many
    decimals it may have depends on its currency (`check_amount_precision`)."""

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
        return str(value) if value is not None else None


@extend_schema_field(
    {"type": "string", "example": "129.90", "description": 'With the currency\'s decimals: "129.90" PLN, "1500" JPY.'}
)
class MoneyOutputField(serializers.Field):
    """An amount as the API shows it: a string with its currency's decimals ("129.90" PLN, "1500" JPY). The
    currency is read from the same object (`currency_of`, default its `currency`); without one (a reward in points
    or percent) two decimals."""

    def __init__(self, *, currency_of=None, **kwargs):
        kwargs["read_only"] = True
        self.currency_of = currency_of or (lambda instance: getattr(instance, "currency", None))
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return super().get_attribute(instance), self.currency_of(instance)

    def to_representation(self, value_and_currency) -> str | None:
        return money_text(*value_and_currency)


def money_text(value, currency: str | None) -> str | None:
    """An amount as the API shows it (MoneyOutputField): its currency's decimals, two without a currency."""
    if value is None:
        return None
    return str(quantize(Decimal(value), currency)) if currency else f"{Decimal(value):.2f}"


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


KEY_MAX_LENGTH = 128


def has_key_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def is_valid_key(value: str) -> bool:
    """KeyField's rule for a shop's id that arrives outside the API (the portal's signed sign-in link): 1 to 128
    characters, no control characters."""
    return 0 < len(value) <= KEY_MAX_LENGTH and not has_key_control_characters(value)


class KeyField(serializers.CharField):
    """A shop's own id (order, refund): up to 128 characters, no control characters (it is addressed in URLs and
    printed in lists; a tab or a newline in it is a bug on the caller's side). Slashes are fine."""

    default_error_messages = {"control": "Must not contain control characters (tabs, newlines, ...)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", KEY_MAX_LENGTH)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if has_key_control_characters(value):
            self.fail("control")
        return value
