"""Money is Decimal plus an ISO-4217 code, never float. Currency facts come from CLDR (Babel)."""

from __future__ import annotations

import datetime
import functools
from decimal import Decimal

from babel.core import get_global
from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Amounts are stored as DecimalField(max_digits=14, decimal_places=2).
STORED_DECIMAL_PLACES = 2
MAX_AMOUNT = Decimal("1000000000")  # 10^9: anything larger is a bug or an attack, not an order


@functools.cache
def active_currencies() -> frozenset[str]:
    """ISO-4217 codes that are legal tender somewhere today (no historical, test or precious-metal codes)."""
    today = datetime.date.today()
    codes: set[str] = set()
    for entries in get_global("territory_currencies").values():
        for code, start, end, tender in entries:
            if not tender:
                continue
            if start and datetime.date(*start) > today:
                continue
            if end and datetime.date(*end) < today:
                continue
            codes.add(code)
    return frozenset(codes)


def is_currency(code: str) -> bool:
    return isinstance(code, str) and code in active_currencies()


def currency_decimals(code: str) -> int:
    """How many decimals an amount in this currency may have (JPY 0, PLN 2), capped at what we store."""
    return min(get_currency_precision(code), STORED_DECIMAL_PLACES)


def validate_currency(value: str) -> None:
    if not is_currency(value):
        raise ValidationError(
            _("%(value)s is not an ISO-4217 currency code in use (e.g. USD, EUR, PLN)."),
            params={"value": value},
        )


def fits_currency(amount: Decimal, currency: str) -> bool:
    """No more decimals than the currency has, by value (12.50 PLN yes, 99.50 JPY no, 1000.0 JPY yes)."""
    return amount == amount.quantize(Decimal(1).scaleb(-currency_decimals(currency)))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (used for computed amounts like 10% of an order)."""
    from decimal import ROUND_HALF_UP

    return amount.quantize(Decimal(1).scaleb(-currency_decimals(currency)), rounding=ROUND_HALF_UP)


@functools.lru_cache(maxsize=16)
def _separators(language: str | None) -> tuple[str, int, str]:
    """(decimal separator, grouping, thousand separator) of a language: looked up once, not for each of the ~1,500
    amounts of a 12-month day-by-day table."""
    from django.utils.formats import get_format

    return tuple(get_format(name, language) for name in ("DECIMAL_SEPARATOR", "NUMBER_GROUPING", "THOUSAND_SEPARATOR"))


def format_amount(value, currency: str) -> str:
    """An amount in the active language with its currency's decimals, rounded half-up: "1,234.50" (PLN, en),
    "1 234,50" (PLN, pl), "1,235" (JPY). Without the currency code (the sentence around it places it)."""
    from django.utils import numberformat
    from django.utils.translation import get_language

    amount = quantize(Decimal(value), currency)
    decimal_sep, grouping, thousand_sep = _separators(get_language())
    return numberformat.format(
        amount, decimal_sep, currency_decimals(currency), grouping, thousand_sep, force_grouping=True
    )


def format_money(value, currency: str) -> str | None:
    """An amount and its currency: "1,234.50 PLN", "1,235 JPY"; None stays None."""
    return None if value is None else f"{format_amount(value, currency)} {currency}"
