"""Server-side prepared statements for the few hot queries whose planning costs more than their execution.

PostgreSQL plans a statement on every execution; a PREPAREd one is planned once per connection (a generic plan:
DATABASES OPTIONS set plan_cache_mode=force_generic_plan, which only affects prepared statements). Django keeps no
prepared statements of its own, so the names here cannot clash.

That one plan is made when the statement is prepared, for the tables as they are then, and kept as long as the
connection (CONN_MAX_AGE) unless an ANALYZE changes their statistics. Made on a new shop's near-empty table it was
a sequential scan: the idempotency lookup read the whole table on every order, and an order cost ~3x more after a
minute of a flash sale (measured: docs/benchmarks.md). Every statement here is a lookup or a write by an indexed
key, whose right plan at any size is the index: so the plan is made with sequential scans priced out
(enable_seqscan off, for that moment only), and a table without a usable index is still scanned.

What was prepared is a property of one PostgreSQL session, so it is remembered on the DB-API connection object
itself (one per thread: gunicorn's gthread workers, live-server threads), never on Django's `connection` proxy,
whose attributes every thread of the process shares. A reconnect (CONN_MAX_AGE, a restarted server) brings a new
DB-API connection, which has prepared nothing yet. PREPARE is not transactional: a rolled-back transaction keeps
what it prepared.
"""

from __future__ import annotations

import functools
import weakref

from django.db import DEFAULT_DB_ALIAS, connection, connections

# DB-API connection -> names prepared on its session. psycopg2 connections accept weak references, so a closed
# connection's entry goes with it.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def execute(name: str, sql: str, params: list) -> tuple:
    """Run `sql` (with $1..$n placeholders) as the prepared statement `name` on this connection; fetch one row."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's; `connection` would look it up on every attribute
    wrapper.ensure_connection()
    raw = wrapper.connection
    names = _prepared.get(raw)
    if names is None:
        names = _prepared.setdefault(raw, set())
    with wrapper.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(params))
        if name not in names:
            cursor.execute(f"PREPARE {name} AS {sql}")
            names.add(name)
            _plan(cursor, f"EXPLAIN EXECUTE {name} ({placeholders})", params)
        cursor.execute(f"EXECUTE {name} ({placeholders})", params)
        return cursor.fetchone()


def _plan(cursor, explain: str, params: list) -> None:
    """Make and keep the statement's generic plan now (EXPLAIN builds it and runs nothing), with sequential scans
    priced out. A GUC change does not invalidate a cached plan; the setting is set back at once, and a failure
    leaves the plan to the first EXECUTE (inside a transaction, its rollback undoes the SET as well)."""
    cursor.execute("SET enable_seqscan = off")
    try:
        cursor.execute(explain, params)
        cursor.fetchall()
    except Exception:
        if not connection.in_atomic_block:
            cursor.execute("RESET enable_seqscan")
        raise
    cursor.execute("RESET enable_seqscan")


def insert(instance):
    """INSERT a model instance through a prepared statement built from the model's own fields; set its pk.

    For the hottest writes only (an order, its referral, its idempotency record): the ORM's INSERT compiles the
    same statement on every call. No signals are sent; these models have none.
    """
    name, sql, fields = _insert_statement(type(instance))
    wrapper = connections[DEFAULT_DB_ALIAS]
    params = [f.get_db_prep_save(f.pre_save(instance, add=True), wrapper) for f in fields]
    (instance.pk,) = execute(name, sql, params)
    instance._state.adding = False
    instance._state.db = wrapper.alias
    return instance


@functools.cache
def _insert_statement(model) -> tuple[str, str, list]:
    """The prepared INSERT of `model`: its name, its SQL and the fields it writes (built once per model)."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.auto_created)]
    quote = connection.ops.quote_name
    # Identifiers come from the model's metadata; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(fields) + 1))}) RETURNING {quote(meta.pk.column)}"
    )
    return f"rs_insert_{meta.db_table}", sql, fields
