"""The merchant's exchange rates: which rate converts an order into its program's currency, and their upkeep (one
at a time in the admin, or many from a CSV file).

A rate says how much of the program's currency one unit of the order's currency is worth, from a day on (in the
merchant's time zone) until the next rate of the same pair. Only the merchant's own rates are ever used: there is
no platform-wide rate.
"""

from __future__ import annotations

import csv
import datetime
import io
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from referral_saas.errors import ValidationFailed
from referral_saas.money import is_currency
from tracking.models import ExchangeRate

RATE_DECIMALS = 10  # ExchangeRate.rate: DecimalField(max_digits=20, decimal_places=10)
MAX_RATE = Decimal(10) ** (20 - RATE_DECIMALS)
EARLIEST_DAY, LATEST_DAY = datetime.date(2000, 1, 1), datetime.date(2100, 12, 31)
MAX_IMPORT_ROWS = 10_000
MAX_LISTED_ERRORS = 20

COLUMNS = {  # accepted header names -> field
    "currency": "base_currency",
    "base_currency": "base_currency",
    "order_currency": "base_currency",
    "quote_currency": "quote_currency",
    "program_currency": "quote_currency",
    "rate": "rate",
    "valid_from": "valid_from",
}


def order_day(*, merchant, at: datetime.datetime) -> datetime.date:
    """The merchant's calendar day of a moment: the day whose rate applies."""
    return at.astimezone(zoneinfo.ZoneInfo(merchant.timezone)).date()


def exchange_rate_for(*, merchant, base_currency: str, quote_currency: str, at: datetime.datetime) -> Decimal | None:
    """The merchant's rate from `base_currency` to `quote_currency` in force at `at`, or None if it has none."""
    return (
        ExchangeRate.objects.for_merchant(merchant)
        .filter(
            base_currency=base_currency,
            quote_currency=quote_currency,
            valid_from__lte=order_day(merchant=merchant, at=at),
        )
        .order_by("-valid_from")
        .values_list("rate", flat=True)
        .first()
    )


# --- the rules of a rate ----------------------------------------------------------------------------------------


def parse_rate(text: str) -> Decimal | None:
    """A rate as written ("4.3012", "4,3012" from a spreadsheet in another locale), or None if it is not one."""
    text = (text or "").strip().replace(",", ".")
    if not text or len(text) > 32 or not all(ch.isdigit() or ch in ".-" for ch in text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def exchange_rate_errors(
    *, base_currency: str, quote_currency: str, rate: Decimal | None, valid_from: datetime.date | None
) -> dict[str, list[str]]:
    """What is wrong with a rate, by field (empty when nothing is): the admin form and the CSV import check the
    same rules."""
    errors: dict[str, list[str]] = {}
    if not is_currency(base_currency):
        errors["base_currency"] = [_("Unknown currency: give an ISO-4217 code such as EUR.")]
    if not is_currency(quote_currency):
        errors["quote_currency"] = [_("Unknown currency: give an ISO-4217 code such as PLN.")]
    elif base_currency == quote_currency:
        errors["quote_currency"] = [_("The two currencies must differ.")]
    if rate is None:
        errors["rate"] = [_('Give the rate as a number, e.g. "4.3012".')]
    elif rate <= 0:
        errors["rate"] = [_("The rate must be greater than zero.")]
    elif rate >= MAX_RATE:
        errors["rate"] = [_("The rate must be less than %(max)s.") % {"max": f"{MAX_RATE:f}"}]
    elif rate.as_tuple().exponent < -RATE_DECIMALS:
        errors["rate"] = [_("At most %(n)d decimal places.") % {"n": RATE_DECIMALS}]
    if valid_from is None:
        errors["valid_from"] = [_("Give the first day as YYYY-MM-DD.")]
    elif not (EARLIEST_DAY <= valid_from <= LATEST_DAY):
        errors["valid_from"] = [_("Give a day between 2000-01-01 and 2100-12-31.")]
    return errors


# --- the CSV import -----------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _header(row: list[str]) -> dict[str, int]:
    """Column positions by field, from the file's first line; a missing required column is an error."""
    positions: dict[str, int] = {}
    for index, name in enumerate(row):
        field = COLUMNS.get(name.strip().lower().lstrip("\ufeff"))
        if field and field not in positions:
            positions[field] = index
    missing = [name for name, field in (("currency", "base_currency"), ("rate", "rate"), ("valid_from", "valid_from"))
               if field not in positions]  # fmt: skip
    if missing:
        raise ValidationFailed(
            _("The first line must name the columns."),
            fields={
                "file": [
                    _("The first line must name the columns currency, rate and valid_from (missing: %(missing)s).")
                    % {"missing": ", ".join(missing)}
                ]
            },
        )
    return positions


def _cell(row: list[str], positions: dict[str, int], field: str) -> str:
    index = positions.get(field)
    return row[index].strip() if index is not None and index < len(row) else ""


def _rows(text: str) -> list[list[str]]:
    # Lines end in LF, CRLF or a lone CR (Excel for Mac's CSV): read as universal newlines, a lone CR is no
    # "new-line character seen in unquoted field" error.
    first = io.StringIO(text, newline=None).readline()
    delimiter = max((",", ";", "\t"), key=first.count)  # Excel in a comma-decimal locale writes semicolons
    return list(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter))


def exchange_rates_import(*, merchant, data: bytes, quote_currency: str) -> ImportResult:
    """Add or update the merchant's rates from a CSV file: a header line naming the columns `currency`, `rate`,
    `valid_from` (YYYY-MM-DD) and optionally `quote_currency` (else `quote_currency` given here, the program
    currency the rates convert into). Every line is checked first: one bad line writes nothing, and the errors say
    which lines and why. Importing the same file again changes nothing (a rate is unique per pair and day: the
    file's rate replaces the stored one)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(fields={"file": [_("The file must be UTF-8 text (CSV).")]}) from None
    if "\x00" in text:
        raise ValidationFailed(fields={"file": [_("The file must be UTF-8 text (CSV).")]})
    try:
        rows = _rows(text)
    except csv.Error as exc:
        raise ValidationFailed(fields={"file": [_("The file is not valid CSV: %(error)s") % {"error": exc}]}) from None
    rows = [(number, row) for number, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValidationFailed(fields={"file": [_("The file has no rates.")]})
    positions = _header(rows[0][1])
    rows = rows[1:]
    if not rows:
        raise ValidationFailed(fields={"file": [_("The file has no rates.")]})
    if len(rows) > MAX_IMPORT_ROWS:
        raise ValidationFailed(fields={"file": [_("At most %(n)d rates per file.") % {"n": MAX_IMPORT_ROWS}]})

    default_quote = (quote_currency or "").strip().upper()
    errors: list[str] = []
    rates: dict[tuple[str, str, datetime.date], Decimal] = {}
    for number, row in rows:
        base = _cell(row, positions, "base_currency").upper()
        quote = _cell(row, positions, "quote_currency").upper() or default_quote
        rate = parse_rate(_cell(row, positions, "rate"))
        day_text = _cell(row, positions, "valid_from")
        try:
            day = datetime.date.fromisoformat(day_text) if len(day_text) == 10 else None
        except ValueError:
            day = None
        problems = exchange_rate_errors(base_currency=base, quote_currency=quote, rate=rate, valid_from=day)
        if not problems and rates.get((base, quote, day), rate) != rate:
            problems = {"rate": [_("Another line gives %(pair)s another rate for this day.") % {
                "pair": f"{base}/{quote}"}]}  # fmt: skip
        if problems:
            messages = " ".join(message for field_errors in problems.values() for message in field_errors)
            errors.append(_("Line %(n)d: %(errors)s") % {"n": number, "errors": messages})
            continue
        rates[(base, quote, day)] = rate
    if errors:
        shown = errors[:MAX_LISTED_ERRORS]
        if len(errors) > MAX_LISTED_ERRORS:
            shown.append(_("… and %(n)d more lines with errors.") % {"n": len(errors) - MAX_LISTED_ERRORS})
        raise ValidationFailed(
            _("Nothing was imported: fix these lines and upload the file again."), fields={"file": shown}
        )
    return _store(merchant=merchant, rates=rates)


@transaction.atomic
def _store(*, merchant, rates: dict[tuple[str, str, datetime.date], Decimal]) -> ImportResult:
    scope = ExchangeRate.objects.for_merchant(merchant)
    stored = {
        (row.base_currency, row.quote_currency, row.valid_from): row.rate
        for row in scope.filter(
            base_currency__in={key[0] for key in rates},
            quote_currency__in={key[1] for key in rates},
            valid_from__in={key[2] for key in rates},
        )
    }
    result = ImportResult()
    now = timezone.now()
    changed = []
    for (base, quote, day), rate in rates.items():
        before = stored.get((base, quote, day))
        if before is None:
            result.created += 1
        elif before == rate:
            result.unchanged += 1
            continue
        else:
            result.updated += 1
        changed.append(
            ExchangeRate(
                merchant=merchant,
                base_currency=base,
                quote_currency=quote,
                rate=rate,
                valid_from=day,
                created_at=now,
                updated_at=now,
            )
        )
    # A concurrent import of the same rates updates instead of failing: the last file's rate wins.
    ExchangeRate.all_merchants.bulk_create(
        changed,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["merchant", "base_currency", "quote_currency", "valid_from"],
        update_fields=["rate", "updated_at"],
    )
    return result
