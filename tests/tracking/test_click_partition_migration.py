"""The migration that partitions the click table carries every click over, backwards and forwards, on PostgreSQL
with clicks in it: same ids, same values, the id sequence going on, referrals still linked."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import FACTORY_FOR_MODEL, join
from tracking.models import Referral

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("tracking", "0011_exchange_rates_program_amounts")]


def _latest():
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] == "tracking"]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def _clicks() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, merchant_id, click_id, occurred_at, code_id, ip_hash FROM tracking_click ORDER BY id"
        )
        return cursor.fetchall()


def _partitioned() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'tracking_click'")
        return cursor.fetchone()[0] == "p"


def _insert_click(code, when: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tracking_click (merchant_id, livemode, click_id, occurred_at, program_id, code_id,
              participant_id, ip_hash, user_agent, referer, utm_source, utm_medium, utm_campaign, utm_term,
              utm_content, is_bot)
            VALUES (%s, true, gen_random_uuid(), %s, %s, %s, %s, md5(%s), '', '', '', '', '', '', '', false)
            RETURNING id
            """,
            [code.merchant_id, when, code.program_id, code.pk, code.participant_id, when],
        )
        return cursor.fetchone()[0]


def test_partitioning_migration_keeps_every_click_backwards_and_forwards(merchant, program):
    latest = _latest()
    _participant, code = join(program, email="anna@people.example")
    referral = FACTORY_FOR_MODEL[Referral](merchant)
    try:
        _migrate(BEFORE)
        assert not _partitioned()
        ids = [_insert_click(code, f"2025-{month:02d}-15T12:00:00Z") for month in range(1, 13)]
        Referral.all_merchants.filter(pk=referral.pk).update(click_id=ids[0])
        before = _clicks()

        _migrate(latest)
        assert _partitioned()
        assert _clicks() == before
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'tracking_click'::regclass")
            assert cursor.fetchone()[0] >= 12 + 1  # a month each, and the DEFAULT partition
        newer = _insert_click(code, "2001-01-01T00:00:00Z")  # no month partition: the DEFAULT one takes it
        assert newer > max(ids)  # the sequence goes on
        referral.refresh_from_db()
        assert referral.click_id == ids[0]

        _migrate(BEFORE)
        assert not _partitioned()
        assert _clicks() == [*before, *[row for row in _clicks() if row[0] == newer]]
        assert len(_clicks()) == len(before) + 1
        assert _insert_click(code, "2026-01-01T00:00:00Z") > newer
    finally:
        _migrate(latest)
    assert _partitioned()
