"""Numbers as the dashboards show them (percentages, decimals, durations in the active language) and the KPI card."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def _exact(value) -> Decimal:
    """A float's value without its binary noise (0.09 / 0.08 - 1 is 0.12499999999999978: 12.5%, to round as such)."""
    return Decimal(str(round(value, 12))) if isinstance(value, float) else Decimal(value)


def _percent(value: float, digits: int) -> Decimal:
    """A ratio as a percentage rounded half-up to `digits` (0.2888 -> 28.9); never -0 (number_format would cut
    the float's decimals off, not round them)."""
    percent = (_exact(value) * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return abs(percent) if percent == 0 else percent


def format_percent(value: float | None, digits: int = 1) -> str | None:
    if value is None:
        return None
    return f"{number_format(_percent(value, digits), decimal_pos=digits)}%"


def format_decimal(value: float | None, digits: int = 1) -> str | None:
    """A number rounded half-up to `digits` decimals in the active language (2.667 -> "2.7"; number_format alone
    would cut it to 2.6)."""
    if value is None:
        return None
    rounded = _exact(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return number_format(abs(rounded) if rounded == 0 else rounded, decimal_pos=digits)


def format_number(value) -> str:
    return number_format(value, force_grouping=True)


def format_duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 3600:
        minutes = max(1, round(seconds / 60))
        return ngettext("about %(n)s minute", "about %(n)s minutes", minutes) % {"n": minutes}
    if seconds < 2 * 86400:
        return _("about %(n)s hours") % {"n": format_decimal(seconds / 3600)}
    return _("about %(n)s days") % {"n": format_decimal(seconds / 86400)}


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: str | None
    hint: str
    change: float | None = None  # against the previous period (0.1 = +10%)
    link: str | None = None
    detail: str | None = None
    lower_is_better: bool = False

    @property
    def change_text(self) -> str | None:
        if self.change is None:
            return None
        if _percent(self.change, 0) == 0:
            return "±0%"
        return f"{'+' if self.change > 0 else ''}{format_percent(self.change, 0)}"

    @property
    def change_is_good(self) -> bool | None:
        if self.change is None or _percent(self.change, 0) == 0:
            return None
        return (self.change < 0) if self.lower_is_better else (self.change > 0)
