# ruff: noqa: S608 - table names here are the click table's and its partitions' (from month numbers); values are params.
"""Clicks by month: the partitions of the click table, made ahead of time, and dropped when retention says so.

`tracking_click` is partitioned by RANGE (occurred_at) into UTC months, `tracking_click_pYYYY_MM`, plus a DEFAULT
partition that takes any click no month partition covers, so that an insert never fails for want of one.

- `click_partitions_ensure` (beat, every 6 hours) makes the partitions of this month and the next
  `CLICK_PARTITIONS_AHEAD` ones, and of every month the DEFAULT partition holds clicks of (a month gets its
  partition before the retention can drop it; its clicks move there), except months retention dropped already.
- `click_month_drop` drops a whole month of raw clicks only if every click in it has an id up to `counted_through`
  (analytics' retention job passes the click id the rollups have counted for good); referrals and orders that
  named one of its clicks keep the order and lose the link (click set NULL, as Django's SET_NULL does). Each drop
  is recorded as a `ClickPurge`: the rollups keep the click numbers of days before `purged_before` instead of
  recounting raw clicks that are gone.

Locks: creating or dropping a partition takes an ACCESS EXCLUSIVE lock on the click table for a moment (PostgreSQL
15 has no concurrent variant while a DEFAULT partition exists), under a short lock_timeout: if a long query holds the
table, the run gives up and beat tries again; clicks wait in the Redis buffer meanwhile.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tracking.models import Click, ClickPurge, Conversion, Referral

logger = logging.getLogger(__name__)

PARENT = Click._meta.db_table
DEFAULT = f"{PARENT}_default"
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")
LOCK_TIMEOUT = "5s"


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _instant(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClickMonth:
    """One month partition: [lo, hi) of occurred_at, in UTC."""

    month: date

    @property
    def table(self) -> str:
        return f"{PARENT}_p{self.month:%Y_%m}"

    @property
    def lo(self) -> datetime:
        return _instant(self.month)

    @property
    def hi(self) -> datetime:
        return _instant(add_months(self.month, 1))


def click_partitions() -> list[ClickMonth]:
    """The month partitions that exist, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        match = _NAME.match(name)
        if match:
            months.append(ClickMonth(date(int(match[1]), int(match[2]), 1)))
    return sorted(months, key=lambda m: m.month)


def click_purged_before() -> datetime | None:
    """Raw clicks before this instant are gone (retention dropped them); None while none were dropped."""
    return ClickPurge.objects.order_by("-purged_before").values_list("purged_before", flat=True).first()


def _lock_timeout(cursor) -> None:
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def click_partition_create(*, month: date) -> bool:
    """Make the partition of `month` unless it exists (True if made). Clicks of that month that the DEFAULT partition
    holds move into it (PostgreSQL refuses the new partition while they are there)."""
    part = ClickMonth(month_start(month))
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_timeout(cursor)
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF {PARENT} DEFAULT")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [part.table])
        if cursor.fetchone()[0]:
            return False
        # The whole table first: the partition's creation needs it anyway, and taking the default partition's lock
        # before the parent's could deadlock with a reader that takes them the other way round.
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        bounds = {"lo": part.lo, "hi": part.hi}
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s)", bounds
        )
        strays = cursor.fetchone()[0]
        if strays:
            cursor.execute(f"CREATE TEMP TABLE _click_move (LIKE {PARENT}) ON COMMIT DROP")
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s "
                "RETURNING *) INSERT INTO _click_move SELECT * FROM moved",
                bounds,
            )
        cursor.execute(f"CREATE TABLE {part.table} PARTITION OF {PARENT} FOR VALUES FROM (%(lo)s) TO (%(hi)s)", bounds)
        if strays:
            cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM _click_move")
            cursor.execute("DROP TABLE _click_move")
    logger.info("click partition created", extra={"partition": part.table, "moved_from_default": strays})
    return True


def click_partitions_ensure(*, ahead: int | None = None, today: date | None = None) -> list[str]:
    """Partitions for this month and the next `ahead` (CLICK_PARTITIONS_AHEAD), and for every month whose clicks
    landed in the DEFAULT partition. Returns the partitions made. Safe to run any number of times."""
    ahead = settings.CLICK_PARTITIONS_AHEAD if ahead is None else ahead
    this_month = month_start(today or timezone.now().astimezone(UTC).date())
    months = {add_months(this_month, n) for n in range(max(ahead, 0) + 1)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT])
        if cursor.fetchone()[0]:
            cursor.execute(f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM {DEFAULT}")
            months |= {row[0] for row in cursor.fetchall()}
    horizon = click_purged_before()
    if horizon is not None:  # a month retention dropped is not made again: its late clicks are deleted instead
        months = {m for m in months if ClickMonth(m).hi > horizon}
    made = [ClickMonth(m).table for m in sorted(months) if click_partition_create(month=m)]
    with connection.cursor() as cursor:
        # Autovacuum analyzes the partitions but never the partitioned table itself, whose statistics the planner
        # uses across partitions (a sample of rows, not a scan; it does not block inserts).
        cursor.execute(f"ANALYZE {PARENT}")
    return made


@dataclass
class DroppedMonth:
    month: date
    clicks: int


def _unlink(cursor, part: ClickMonth) -> None:
    """Referrals and orders that name a click of the month lose the link (their click ids are in its id range:
    an index range on their click_id, then a primary-key probe into the partition)."""
    cursor.execute(f"SELECT min(id), max(id) FROM {part.table}")
    lo, hi = cursor.fetchone()
    if lo is None:
        return
    for model in (Referral, Conversion):
        cursor.execute(
            f"UPDATE {model._meta.db_table} r SET click_id = NULL "
            f"WHERE r.click_id BETWEEN %(lo)s AND %(hi)s "
            f"AND EXISTS (SELECT 1 FROM {part.table} c WHERE c.id = r.click_id AND c.merchant_id = r.merchant_id)",
            {"lo": lo, "hi": hi},
        )


def click_months_due(*, before: date) -> list[ClickMonth]:
    """The month partitions before `before` (UTC), oldest first."""
    return [part for part in click_partitions() if part.month < before]


def click_month_drop(*, part: ClickMonth, counted_through: int) -> DroppedMonth | None:
    """Drop one month of raw clicks if every click in it has an id <= `counted_through` (else None, nothing done),
    and record it (ClickPurge). Referrals and orders that named one of its clicks lose the link first. Raises
    OperationalError when the click table stays locked by others past LOCK_TIMEOUT (nothing done)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys the caller's transaction still owes a check (deferred) are checked now: PostgreSQL drops no
        # table with pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"SELECT count(*) FROM {part.table}")  # before the lock: a month's scan, nobody waits on it
        clicks = cursor.fetchone()[0]
        _lock_timeout(cursor)
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        # Under the lock, so that no click of the month can arrive between this check and the drop.
        cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {part.table}")
        if cursor.fetchone()[0] > counted_through:
            logger.info("click partition kept: the rollups have not counted all of it", extra={"month": part.table})
            return None
        _unlink(cursor, part)
        cursor.execute(f"DROP TABLE {part.table}")
        ClickPurge.objects.update_or_create(
            month=part.month, defaults={"purged_before": part.hi, "clicks": clicks, "dropped_at": timezone.now()}
        )
    logger.info("click partition dropped", extra={"partition": part.table, "clicks": clicks})
    return DroppedMonth(part.month, clicks)


def click_default_purge(*, counted_through: int) -> int:
    """Delete what the DEFAULT partition holds from before the dropped months (a click that arrived after its month
    was dropped, from a buffer older than the retention: never counted), if counted through. Returns how many."""
    horizon = click_purged_before()
    if horizon is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {DEFAULT} WHERE occurred_at < %(horizon)s AND id <= %(counted)s",
            {"horizon": horizon, "counted": counted_through},
        )
        return cursor.rowcount


def click_dangling_references() -> dict[str, int]:
    """Referrals and orders whose click id names no click (the integrity check the missing foreign keys call for;
    zero unless something deleted clicks behind Django's and the retention's back)."""
    counts = {}
    with connection.cursor() as cursor:
        for name, model in (("referrals", Referral), ("orders", Conversion)):
            cursor.execute(
                f"SELECT count(*) FROM {model._meta.db_table} r WHERE r.click_id IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {PARENT} c WHERE c.id = r.click_id)"
            )
            counts[name] = cursor.fetchone()[0]
    return counts
