"""The ingest task: batches from the Redis stream into PostgreSQL, at least once, never twice, never lost."""

from __future__ import annotations

import json

import pytest

from tests.tracking.streams import stream_entry
from tracking.clicks import GROUP, STREAM, _ensure_group, clicks_ingest
from tracking.models import Click

pytestmark = pytest.mark.django_db


def test_ingest_moves_every_buffered_click_and_empties_the_stream(referrer, click_stream):
    _participant, code = referrer
    for _ in range(2500):
        click_stream.xadd(STREAM, stream_entry(code))
    assert clicks_ingest(batch_size=1000) == 2500
    assert Click.objects.for_merchant(code.merchant).count() == 2500
    assert click_stream.xlen(STREAM) == 0
    assert clicks_ingest() == 0


def test_a_replayed_entry_is_stored_once(referrer, click_stream):
    _participant, code = referrer
    entry = stream_entry(code)
    click_stream.xadd(STREAM, entry)
    click_stream.xadd(STREAM, entry)  # e.g. a batch re-read after a crash between insert and ack
    clicks_ingest()
    assert Click.objects.for_merchant(code.merchant).count() == 1


def test_entries_a_dead_consumer_left_pending_are_reclaimed(referrer, click_stream):
    _participant, code = referrer
    _ensure_group(click_stream)
    for _ in range(3):
        click_stream.xadd(STREAM, stream_entry(code))
    # A worker reads the batch and dies before inserting or acknowledging it.
    read = click_stream.xreadgroup(GROUP, "dead-worker", {STREAM: ">"}, count=10)
    assert len(read[0][1]) == 3
    assert clicks_ingest(consumer="alive-worker", reclaim_idle_ms=60_000) == 0  # not idle long enough yet
    assert clicks_ingest(consumer="alive-worker", reclaim_idle_ms=0) == 3
    assert Click.objects.for_merchant(code.merchant).count() == 3
    assert click_stream.xpending(STREAM, GROUP)["pending"] == 0


def test_a_click_of_a_deleted_code_is_dropped_instead_of_blocking_the_batch(referrer, click_stream):
    from tests.factories import ProgramFactory, join

    _participant, code = referrer
    doomed_program = ProgramFactory(merchant=code.merchant)
    _p, doomed = join(doomed_program, email="gone@people.example")
    click_stream.xadd(STREAM, stream_entry(doomed))
    click_stream.xadd(STREAM, stream_entry(code))
    type(doomed_program).all_merchants.filter(pk=doomed_program.pk).delete()
    assert clicks_ingest() == 1
    assert Click.objects.for_merchant(code.merchant).get().code == code
    assert click_stream.xlen(STREAM) == 0


def test_a_click_stores_the_device_id_it_was_buffered_with(referrer, click_stream):
    _participant, code = referrer
    entry = stream_entry(code, device_id="Qm3xV0c2L9hT8pZk1rWs4A")
    click_stream.xadd(STREAM, {"d": json.dumps(entry)})
    assert clicks_ingest() == 1
    assert Click.objects.for_merchant(code.merchant).get().device_id == "Qm3xV0c2L9hT8pZk1rWs4A"


def test_entries_buffered_before_clicks_carried_a_device_id_still_ingest(referrer, click_stream):
    _participant, code = referrer
    click_stream.xadd(STREAM, {"d": json.dumps(stream_entry(code))})  # the JSON entry, without device_id
    click_stream.xadd(STREAM, stream_entry(code))  # the older one-field-per-value entry
    assert clicks_ingest() == 2
    assert list(Click.objects.for_merchant(code.merchant).values_list("device_id", flat=True)) == ["", ""]
    assert click_stream.xlen(STREAM) == 0
