"""Click retention: a month of raw clicks is dropped only after the rollups counted it, and the dashboards keep
showing its clicks (from the rollups) after it is gone, also when its days are recounted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from analytics.models import DailyStats
from analytics.selectors.periods import Period
from analytics.selectors.sums import daily_totals
from analytics.services import click_retention_run, rollup, rollup_backfill, rollup_incremental
from analytics.tasks import click_retention as click_retention_task
from tests.factories import FACTORY_FOR_MODEL, join
from tests.processes import celery_worker
from tests.system.stack import wait_for
from tracking.models import Click, ClickPurge, Conversion, Referral
from tracking.partitions import ClickMonth, add_months, click_dangling_references, click_partitions, month_start
from tracking.tasks import click_partitions as click_partitions_task

pytestmark = pytest.mark.django_db

MONTHS_BACK = 16  # and the current month: 17 months of clicks, 3 of them older than 13 full months
PER_MONTH = 20


def _this_month():
    return month_start(timezone.now().astimezone(UTC).date())


def _click(code, at: datetime) -> Click:
    return Click(
        merchant=code.merchant, click_id=uuid.uuid4(), occurred_at=at, program=code.program, code=code,
        participant=code.participant, ip_hash=f"ip-{at:%Y%m%d%H%M%S%f}", is_bot=False,
    )  # fmt: skip


def _seed(code) -> None:
    """PER_MONTH clicks in each month, at noon UTC on its first days (the same local days in Warsaw)."""
    now = timezone.now()
    rows = []
    for back in range(MONTHS_BACK, -1, -1):
        month = add_months(_this_month(), -back)
        for i in range(PER_MONTH):
            at = datetime(month.year, month.month, 1 + i % 27, 12, i, tzinfo=UTC)
            rows.append(_click(code, min(at, now - timedelta(seconds=i + 1))))
    Click.all_merchants.bulk_create(rows)


def _month_clicks(merchant, program, month) -> int:
    end = add_months(month, 1) - timedelta(days=1)
    return daily_totals(merchant=merchant, livemode=True, programs=[program], period=Period(month, end))["clicks"]


def _rollup_later(monkeypatch, minutes: int = 11) -> None:
    """An incremental run as beat makes it `minutes` later: runs re-read from a checkpoint LOOKBACK (10 minutes)
    old, so only then are the rollups done for good with the clicks the run before saw."""
    later = timezone.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(rollup, "timezone", SimpleNamespace(now=lambda: later, localdate=timezone.localdate))
    rollup_incremental()
    monkeypatch.undo()


def test_retention_drops_only_counted_months_and_the_dashboards_keep_their_clicks(merchant, program, monkeypatch):
    _participant, code = join(program, email="anna@people.example")
    _seed(code)
    oldest = add_months(_this_month(), -MONTHS_BACK)
    first = Click.objects.for_merchant(merchant).order_by("occurred_at").first()
    referral = FACTORY_FOR_MODEL[Referral](merchant)
    order = FACTORY_FOR_MODEL[Conversion](merchant)
    Referral.all_merchants.filter(pk=referral.pk).update(click=first)
    Conversion.all_merchants.filter(pk=order.pk).update(click=first)

    # Never rolled up: nothing goes, however old.
    result = click_retention_run(months=13)
    assert result.dropped == []
    assert Click.objects.for_merchant(merchant).count() == (MONTHS_BACK + 1) * PER_MONTH
    assert {p.month for p in click_partitions()} >= {add_months(_this_month(), -b) for b in range(MONTHS_BACK + 1)}

    rollup_incremental()
    # A late click of the oldest month, stored after that run: the month is not all counted, so it stays, and so
    # do the months after it (retention goes oldest first and stops there).
    Click.all_merchants.bulk_create([_click(code, datetime(oldest.year, oldest.month, 28, 9, tzinfo=UTC))])
    assert click_retention_run(months=13).dropped == []
    assert Click.objects.for_merchant(merchant).count() == (MONTHS_BACK + 1) * PER_MONTH + 1

    rollup_incremental()
    _rollup_later(monkeypatch)
    counted = {add_months(oldest, n): _month_clicks(merchant, program, add_months(oldest, n)) for n in range(4)}
    assert counted[oldest] == PER_MONTH + 1
    result = click_retention_run(months=13)

    due = [add_months(oldest, n) for n in range(3)]  # older than the 13 full months before the current one
    assert [d.month for d in result.dropped] == due
    assert [d.clicks for d in result.dropped] == [PER_MONTH + 1, PER_MONTH, PER_MONTH]
    assert min(p.month for p in click_partitions()) == add_months(oldest, 3)
    assert Click.objects.for_merchant(merchant).count() == (MONTHS_BACK + 1 - 3) * PER_MONTH
    assert list(ClickPurge.objects.values_list("month", flat=True)) == due
    # The referral and the order stay; they no longer point at a click that is gone.
    referral.refresh_from_db()
    order.refresh_from_db()
    assert (referral.click_id, order.click_id) == (None, None)
    assert click_dangling_references() == {"referrals": 0, "orders": 0}

    # The dashboards still count the dropped months' clicks, also after their days are recounted from raw tables
    # (an incremental run that touches them, a full backfill).
    assert {m: _month_clicks(merchant, program, m) for m in counted} == counted
    Click.all_merchants.bulk_create([_click(code, datetime(oldest.year, oldest.month, 2, 15, tzinfo=UTC))])  # too late
    rollup_incremental()
    rollup_backfill(since=oldest - timedelta(days=1), merchants=[merchant])
    assert {m: _month_clicks(merchant, program, m) for m in counted} == counted
    assert DailyStats.objects.for_merchant(merchant).filter(day__lt=add_months(oldest, 3), clicks__gt=0).count() > 0

    # The late click of a dropped month waits in the DEFAULT partition until the rollups are done with it, then goes.
    _rollup_later(monkeypatch)
    assert click_retention_run(months=13).dropped == []
    horizon = ClickPurge.objects.latest("month").purged_before
    assert Click.objects.for_merchant(merchant).filter(occurred_at__lt=horizon).count() == 0
    assert min(p.month for p in click_partitions()) == add_months(oldest, 3)


def test_retention_of_zero_months_keeps_every_click(merchant, program, monkeypatch):
    _participant, code = join(program, email="anna@people.example")
    _seed(code)
    rollup_incremental()
    _rollup_later(monkeypatch)
    assert click_retention_run(months=0).dropped == []
    assert Click.objects.for_merchant(merchant).count() == (MONTHS_BACK + 1) * PER_MONTH


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beats_click_tasks_run_on_a_real_worker_and_drop_only_what_the_rollups_counted(merchant, program, monkeypatch):
    _participant, code = join(program, email="anna@people.example")
    _seed(code)
    rollup_incremental()
    _rollup_later(monkeypatch)
    oldest = add_months(_this_month(), -MONTHS_BACK)
    counted = {add_months(oldest, n): _month_clicks(merchant, program, add_months(oldest, n)) for n in range(4)}
    ahead = ClickMonth(add_months(_this_month(), 3))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {ahead.table}")  # as if it had not been made yet
    with celery_worker(queues=["clicks", "analytics"]):
        click_partitions_task.delay()
        click_retention_task.delay()  # CLICK_RETENTION_MONTHS: 13 by default
        wait_for(
            lambda: (
                {ahead.month, add_months(oldest, 3)} <= {p.month for p in click_partitions()}
                and min(p.month for p in click_partitions()) == add_months(oldest, 3)
            ),
            timeout=120,
            what="the worker to make next months' partition and drop the three oldest months",
        )
    assert {m: _month_clicks(merchant, program, m) for m in counted} == counted
