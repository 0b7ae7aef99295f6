"""The period a dashboard shows: parsing `from` / `to`, the merchant's today, the previous period and the
before/after baseline."""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

DEFAULT_DAYS = 30
MAX_DAYS = 366 * 2


# The dashboards show days from EARLIEST to a year after the shop's today: older or later dates are typing mistakes
# (and date arithmetic on year 1 or 9999 overflows), so they are moved into that range with a message.
EARLIEST = datetime.date(2000, 1, 1)
FUTURE_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: datetime.date
    end: datetime.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        return Period(_days_before(self.start, self.days), _days_before(self.start, 1))

    def dates(self) -> list[datetime.date]:
        return [self.start + datetime.timedelta(days=i) for i in range(self.days)]

    def bounds(self, tz: str) -> tuple[datetime.datetime, datetime.datetime]:
        """The period as [start, end) instants in the merchant's time zone (for links to the raw lists)."""
        zone = zoneinfo.ZoneInfo(tz)
        lo = datetime.datetime.combine(self.start, datetime.time.min, tzinfo=zone)
        hi = datetime.datetime.combine(self.end + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
        return lo, hi


def _days_before(day: datetime.date, days: int) -> datetime.date:
    """`day` minus `days`, or the first day Python knows (instead of an OverflowError)."""
    try:
        return day - datetime.timedelta(days=days)
    except OverflowError:
        return datetime.date.min


def merchant_today(merchant) -> datetime.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(merchant.timezone)).date()


def latest_day(merchant) -> datetime.date:
    return merchant_today(merchant) + datetime.timedelta(days=FUTURE_DAYS)


def _parse_date(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def parse_period(params, *, merchant, prefix: str = "", default_days: int = DEFAULT_DAYS) -> tuple[Period, list[str]]:
    """The period a dashboard shows, from `from` / `to` (YYYY-MM-DD), and what was changed in what was asked.

    A missing date is the default (the last `default_days` days up to `to`, or up to today); a date that is not one
    is left out; dates before EARLIEST or more than a year ahead are moved into that range; `from` after `to` are
    swapped; a period longer than MAX_DAYS keeps its last MAX_DAYS days.
    """
    today, earliest, latest = merchant_today(merchant), EARLIEST, latest_day(merchant)
    notes = []
    raw = {name: params.get(f"{prefix}{name}") for name in ("from", "to")}
    parsed = {name: _parse_date(value) for name, value in raw.items()}
    if any(value and parsed[name] is None for name, value in raw.items()):
        notes.append(_("A date was not in the form YYYY-MM-DD; it was left out."))
    if any(day is not None and not earliest <= day <= latest for day in parsed.values()):
        notes.append(
            _("Dates go from %(earliest)s to %(latest)s; a date outside that range was moved into it.")
            % {"earliest": earliest.isoformat(), "latest": latest.isoformat()}
        )
    start, end = (None if day is None else min(max(day, earliest), latest) for day in parsed.values())
    end = end or today
    start = start or max(_days_before(end, default_days - 1), earliest)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        start = end - datetime.timedelta(days=MAX_DAYS - 1)
        notes.append(_("A period is at most %(n)s days; the last %(n)s days are shown.") % {"n": MAX_DAYS})
    return Period(start, end), notes


def default_baseline(*, merchant, starts_on: datetime.date, days: int) -> Period:
    """The before/after table's default baseline: `days` days before the program started (inside the range the
    dashboards show, whatever the program's start date)."""
    end = min(max(_days_before(starts_on, 1), EARLIEST), latest_day(merchant))
    return Period(max(_days_before(end, days - 1), EARLIEST), end)
