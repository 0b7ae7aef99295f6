"""Click retention: raw clicks are dropped a month at a time, never before the rollups have counted them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from analytics.services.rollup import LOCK_KEY, rollup_clicks_counted_through
from tracking.partitions import (
    DroppedMonth,
    add_months,
    click_default_purge,
    click_month_drop,
    click_months_due,
    click_partitions_ensure,
    month_start,
)

logger = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    cutoff: date | None = None  # months before this one (UTC) are due
    counted_through: int = 0
    dropped: list[DroppedMonth] = field(default_factory=list)


def click_retention_run(*, months: int | None = None, today: date | None = None) -> RetentionResult:
    """Drop the raw clicks of the months more than `months` (CLICK_RETENTION_MONTHS; 0 keeps everything) full months
    before the current one, oldest first, each only once every click in it is counted in the rollups (its id is at
    most the click id the next incremental run starts after); the first month that is not stops the run, and a
    later run drops it. The daily stats keep those months' click numbers (the rollups never recount dropped days).

    Holds the rollup's lock: no rollup runs while a month goes, so what it has counted cannot move meanwhile.
    """
    months = settings.CLICK_RETENTION_MONTHS if months is None else months
    # A month whose clicks sit in the DEFAULT partition gets its own first (so that it can be dropped whole).
    click_partitions_ensure(today=today)
    if months <= 0:
        return RetentionResult()
    result = RetentionResult(cutoff=add_months(month_start(today or timezone.now().astimezone(UTC).date()), -months))
    for part in click_months_due(before=result.cutoff):
        # One month per transaction: the click table is locked only for the moment its month goes.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                result.counted_through = rollup_clicks_counted_through(cursor)
                dropped = click_month_drop(part=part, counted_through=result.counted_through)
        except OperationalError as exc:  # the click table stayed locked (lock_timeout): the next run goes on
            logger.warning("click retention: %s not dropped now: %s", part.table, exc)
            break
        if dropped is None:
            break  # not counted yet: neither it nor a later month goes
        result.dropped.append(dropped)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        click_default_purge(counted_through=rollup_clicks_counted_through(cursor))
    if result.dropped:
        logger.info(
            "click retention: %s month(s) dropped (%s clicks), before %s",
            len(result.dropped), sum(d.clicks for d in result.dropped), result.cutoff,
        )  # fmt: skip
    return result
