"""tracking_click becomes a table partitioned by month of occurred_at (PostgreSQL declarative partitioning).

The rows are carried over (forwards and backwards): the table is renamed, a partitioned table with the same columns
takes its name (a DEFAULT partition, one partition per month that has clicks and for the current month and the next
three), the rows are copied with their ids, the id sequence continues where it was, and the indexes and foreign keys
are rebuilt under their old names. The primary key becomes (id, occurred_at) and the click's unique key
(merchant, click_id, occurred_at): PostgreSQL needs the partition key in both. Referrals and orders keep pointing at
clicks by id, without a database constraint (docs/architecture.md, "Clicks by month").

It runs in one transaction and copies every click: on a large table, plan for the time of a full copy (about a
minute per few million clicks) during which clicks wait in the Redis buffer (nothing is lost).
"""

import re
from datetime import UTC, date, datetime

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

TABLE = "tracking_click"
AHEAD = 3  # months after the current one (as tracking.partitions does by default)


def _month_after(month: date, n: int = 1) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _definitions(cursor, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's plain indexes (CREATE INDEX statements, for `TABLE`) and foreign keys (name, definition); the
    primary key and unique constraints are rebuilt explicitly."""
    cursor.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY i.indexrelid
        """,
        [table],
    )
    indexes = [re.sub(r" ON (ONLY )?(\w+\.)?\w+ ", f" ON {TABLE} ", row[0], count=1) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        " ORDER BY conname",
        [table],
    )
    return indexes, cursor.fetchall()


def _rename_with_sequence(cursor, old: str, new: str) -> str:
    """Rename the table and its id sequence (the new table's sequence takes the usual name); return the sequence."""
    cursor.execute(f"ALTER TABLE {old} RENAME TO {new}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [new])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {new}_id_seq")
    return f"{new}_id_seq"


def _copy(cursor, *, source: str, source_sequence: str) -> None:
    """Every row with its id; the new id sequence goes on from where the old one was (no id is ever reused)."""
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {source}")
    cursor.execute(f"SELECT last_value, is_called FROM {source_sequence}")
    last_value, is_called = cursor.fetchone()
    cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)", [TABLE, last_value, is_called])


def _rebuild(cursor, indexes, foreign_keys) -> None:
    for statement in indexes:
        cursor.execute(statement)
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{TABLE}_unpartitioned"
    with schema_editor.connection.cursor() as cursor:
        sequence = _rename_with_sequence(cursor, TABLE, old)
        indexes, foreign_keys = _definitions(cursor, old)
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY) PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        cursor.execute(f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date FROM {old}")
        this_month = datetime.now(UTC).date().replace(day=1)
        months = {row[0] for row in cursor.fetchall()} | {_month_after(this_month, n) for n in range(AHEAD + 1)}
        for month in sorted(months):
            lo = datetime(month.year, month.month, 1, tzinfo=UTC)
            end = _month_after(month)
            hi = datetime(end.year, end.month, 1, tzinfo=UTC)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month:%Y_%m} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", [lo, hi]
            )
        _copy(cursor, source=old, source_sequence=sequence)
        cursor.execute(f"DROP TABLE {old}")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, occurred_at)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT click_unique_id UNIQUE (merchant_id, click_id, occurred_at)")
        _rebuild(cursor, indexes, foreign_keys)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    old = f"{TABLE}_partitioned"
    with schema_editor.connection.cursor() as cursor:
        sequence = _rename_with_sequence(cursor, TABLE, old)
        indexes, foreign_keys = _definitions(cursor, old)
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY)")
        _copy(cursor, source=old, source_sequence=sequence)
        cursor.execute(f"DROP TABLE {old}")  # and its partitions
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT click_unique_id UNIQUE (merchant_id, click_id)")
        _rebuild(cursor, indexes, foreign_keys)
        # The foreign keys of referrals and orders come back next: a click that retention dropped is no click.
        for referrer in ("tracking_referral", "tracking_conversion"):
            cursor.execute(
                f"UPDATE {referrer} r SET click_id = NULL WHERE click_id IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {TABLE} c WHERE c.id = r.click_id)"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("programs", "0008_share_once_per_day"),
        ("tenancy", "0004_no_lone_merchant_index"),
        ("tracking", "0011_exchange_rates_program_amounts"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClickPurge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(help_text="The first day of the month (UTC).", unique=True)),
                ("purged_before", models.DateTimeField()),
                ("clicks", models.BigIntegerField(default=0)),
                ("dropped_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={"ordering": ["month"]},
        ),
        migrations.AlterField(
            model_name="conversion",
            name="click",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="tracking.click",
            ),
        ),
        migrations.AlterField(
            model_name="referral",
            name="click",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="tracking.click",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="click", name="click_unique_id"),
                migrations.AddConstraint(
                    model_name="click",
                    constraint=models.UniqueConstraint(
                        fields=("merchant", "click_id", "occurred_at"), name="click_unique_id"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(partition, unpartition)],
        ),
    ]
