"""manage.py rollup_stats: an incremental run, or a backfill with a progress bar; the beat task runs the same."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from analytics.models import DailyStats
from analytics.services import rollup_backfill
from analytics.tasks import rollup
from tests.analytics.helpers import World, assert_rollups_match

pytestmark = pytest.mark.django_db


def test_backfill_from_a_date_with_a_progress_bar(merchant):
    world = World(merchant, seed=31)
    world.people(5)
    world.events(50)
    out = io.StringIO()
    call_command("rollup_stats", "--since", "2026-03-01", "--merchant", merchant.slug, "--chunk-days", "60", stdout=out)
    text = out.getvalue()
    assert "[###" in text
    assert "100%" in text
    assert f"since {date(2026, 3, 1)}" in text
    assert_rollups_match(merchant)


def test_an_incremental_run_from_the_command_line(merchant):
    world = World(merchant, seed=32)
    world.people(4)
    world.events(30)
    out = io.StringIO()
    call_command("rollup_stats", stdout=out)
    assert "Recounted" in out.getvalue()
    assert DailyStats.objects.for_merchant(merchant).exists()


def test_bad_arguments_are_refused(merchant):
    with pytest.raises(CommandError, match="--since must be a date"):
        call_command("rollup_stats", "--since", "yesterday")
    with pytest.raises(CommandError, match="Unknown merchant"):
        call_command("rollup_stats", "--since", "2026-01-01", "--merchant", "nope")
    for days in ("0", "-3", "week"):
        with pytest.raises(CommandError, match="--chunk-days: must be a whole number of days, at least 1"):
            call_command("rollup_stats", "--since", "2026-01-01", "--chunk-days", days)
    with pytest.raises(ValueError, match="chunk_days must be at least 1"):
        rollup_backfill(since=date(2026, 1, 1), chunk_days=0)


def test_the_beat_task_rolls_up_and_is_scheduled(merchant):
    world = World(merchant, seed=33)
    world.people(3)
    world.events(20)
    assert rollup() > 0
    assert_rollups_match(merchant)
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "analytics.rollup" in scheduled
    assert settings.CELERY_TASK_ROUTES["analytics.*"]["queue"] == "analytics"
