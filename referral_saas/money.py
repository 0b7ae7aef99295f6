"""Money is Decimal plus an ISO-4217 code, never float. Currency facts come from CLDR (Babel)."""

from __future__ import annotations

import datetime
import functools
from decimal import Decimal, localcontext

from babel.core import get_global
from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

# Amounts are stored as DecimalField(max_digits=15, decimal_places=3): twelve digits before the point, and the three
# decimals of the dinars (KWD, BHD, OMR, JOD, TND, LYD); each amount still has only its own currency's decimals.
STORED_DECIMAL_PLACES = 3
MAX_AMOUNT = Decimal("1000000000")  # 10^9: anything larger is a bug or an attack, not an order
CENTS = Decimal("0.01")


class MoneyField(models.DecimalField):
    """A stored amount: numeric(15, 3), the third decimal for the currencies that have one (KWD, BHD, ...).

    Read back with two decimals unless it needs the third ("129.90", not "129.900"; "12.345" stays): the same
    value, written as amounts were before a third decimal was stored, so whatever prints an amount without its
    currency (an admin form, a CSV export, a log line) reads as it did. Amounts shown with their currency are rounded
    to its own decimals anyway (format_money, MoneyOutputField: "1.250" KWD, "1500" JPY)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 15)
        kwargs.setdefault("decimal_places", STORED_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        cents = value.quantize(CENTS)
        return cents if cents == value else value


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
    """How many decimals an amount in this currency may have (JPY 0, PLN 2, KWD 3), capped at what we store."""
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


def convert(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """`amount` at `rate` (units of `currency` for one unit of the amount's currency), rounded half-up to the
    currency's minor unit. Monotonic: a part of an amount never converts to more than the whole. The product is
    exact (as PostgreSQL's numeric one is, which converts refunds the same way), then rounded once."""
    with localcontext() as context:
        context.prec = 64
        return quantize(amount * rate, currency)


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
