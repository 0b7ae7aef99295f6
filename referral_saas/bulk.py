"""INSERT many rows of a model in one statement without building model instances, for the batched rewards pipeline:
Django's bulk_create spends most of its time making and preparing instances (about as long as PostgreSQL takes
to store them). Rows are dicts by field attname ("merchant_id"); a field left out takes its default, as a model
instance would. A unique constraint the rows break raises IntegrityError, as bulk_create does (the callers roll back
to a savepoint and go one row at a time)."""

from __future__ import annotations

from django.db import connection, models


def insert_rows(model: type[models.Model], rows: list[dict], *, returning: str | None = "id") -> list:
    """Insert `rows` into `model`'s table in one statement; returns the `returning` column of each, in order."""
    if not rows:
        return []
    meta = model._meta
    given = set().union(*(row.keys() for row in rows))
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.attname not in given)]
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in given or f.has_default()}
    prepare = {f.attname for f in fields if isinstance(f, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list = []
    for row in rows:
        for f in fields:
            value = row[f.attname] if f.attname in row else defaults[f.attname]
            params.append(f.get_db_prep_save(value, connection) if f.attname in prepare else value)
    table = connection.ops.quote_name(meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(rows))}"  # noqa: S608 - names from the model
    with connection.cursor() as cursor:
        if returning is None:
            cursor.execute(sql, params)
            return []
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(returning)}", params)
        return [row[0] for row in cursor.fetchall()]
