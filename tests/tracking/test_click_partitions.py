"""The click table is partitioned by month: an insert never fails for want of a partition, partitions are made
ahead, and a month's clicks that landed in the DEFAULT partition move to their own when it is made."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.utils import timezone

from tests.tracking.streams import stream_entry
from tracking.clicks import STREAM, clicks_ingest
from tracking.models import Click
from tracking.partitions import DEFAULT, ClickMonth, add_months, click_partitions, click_partitions_ensure, month_start

pytestmark = pytest.mark.django_db


def _where(click: Click) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_click WHERE id = %s", [click.pk])
        return cursor.fetchone()[0]


def test_partitions_are_made_for_this_month_and_the_next_ones():
    made = click_partitions_ensure(ahead=3)
    this_month = month_start(timezone.now().astimezone(UTC).date())
    months = {p.month for p in click_partitions()}
    assert {add_months(this_month, n) for n in range(4)} <= months
    assert click_partitions_ensure(ahead=3) == []  # nothing twice
    assert all(name.startswith("tracking_click_p") for name in made)


def test_an_old_click_is_stored_in_the_default_partition_then_moves_to_its_month(referrer, click_stream):
    _participant, code = referrer
    years_ago = time.time() - 5 * 365 * 86400
    entry = stream_entry(code, ts=f"{years_ago:.6f}")
    click_stream.xadd(STREAM, entry)
    assert clicks_ingest() == 1
    click = Click.objects.for_merchant(code.merchant).get()
    assert _where(click) == DEFAULT

    click_partitions_ensure(ahead=0)
    month = ClickMonth(month_start(datetime.fromtimestamp(years_ago, tz=UTC)))
    assert _where(click) == month.table
    assert Click.objects.for_merchant(code.merchant).get() == click  # same id, same click

    click_stream.xadd(STREAM, entry)  # the same entry again (a replay): still one click
    clicks_ingest()
    assert Click.objects.for_merchant(code.merchant).count() == 1
