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


def execute(name: str, sql: str, params: list, *, before: tuple[str, list] | None = None) -> tuple:
    """Run `sql` (with $1..$n placeholders) as the prepared statement `name` on this connection; fetch one row.

    `before`: a statement (with %s placeholders) and its parameters sent in the same round trip, ahead of it. The two
    are two statements: under READ COMMITTED the prepared one takes its snapshot after the first has run."""
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
        if before is None:
            cursor.execute(f"EXECUTE {name} ({placeholders})", params)
        else:
            cursor.execute(f"{before[0]}; EXECUTE {name} ({placeholders})", [*before[1], *params])
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
    _written(instance, execute(name, sql, _values(instance, fields))[0])
    return instance


def insert_unless_taken(instance, *, parent=None, via: str = ""):
    """INSERT `instance` (and first `parent`, whose new id becomes `instance`'s foreign key `via`) in one
    statement, each row ON CONFLICT DO NOTHING: a row a unique constraint refuses (another transaction has it, or
    is writing it: PostgreSQL waits for that one to end) is not written, and no error aborts the transaction. A
    refused parent writes no instance either. Returns (parent's id, instance's id), None for a row not written,
    and sets the pk of those written; the caller undoes a written parent whose instance was refused, if it must.
    """
    if parent is None:
        name, sql, fields = _insert_statement(type(instance), skip_taken=True)
        row = execute(name, sql, _values(instance, fields))
        return None, _written(instance, row[0] if row else None)
    name, sql, parent_fields, fields = _linked_insert_statement(type(parent), type(instance), via)
    parent_id, instance_id = execute(name, sql, _values(parent, parent_fields) + _values(instance, fields))
    _written(parent, parent_id)
    if _written(instance, instance_id) is not None:
        setattr(instance, via, parent)  # after the parent's pk is set: the descriptor copies it
    return parent_id, instance_id


def _values(instance, fields: list) -> list:
    """The database values of `instance`'s `fields` for an INSERT (defaults and auto-now applied)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    return [f.get_db_prep_save(f.pre_save(instance, add=True), wrapper) for f in fields]


def _written(instance, pk):
    if pk is not None:
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS
    return pk


def _columns(model, exclude: str = "") -> list:
    meta = model._meta
    return [f for f in meta.concrete_fields if not (f.primary_key and f.auto_created) and f.name != exclude]


@functools.cache
def _insert_statement(model, skip_taken: bool = False) -> tuple[str, str, list]:
    """The prepared INSERT of `model`: its name, its SQL and the fields it writes (built once per model)."""
    meta = model._meta
    fields = _columns(model)
    quote = connection.ops.quote_name
    # Identifiers come from the model's metadata; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(fields) + 1))})"
        f"{' ON CONFLICT DO NOTHING' if skip_taken else ''} RETURNING {quote(meta.pk.column)}"
    )
    return f"rs_insert{'_new' if skip_taken else ''}_{meta.db_table}", sql, fields


@functools.cache
def _linked_insert_statement(parent_model, model, via: str) -> tuple[str, str, list, list]:
    """insert_unless_taken's statement for a parent row and a row pointing at it: name, SQL, both field lists."""
    quote = connection.ops.quote_name
    parent_fields, fields = _columns(parent_model), _columns(model, exclude=via)
    link = model._meta.get_field(via)
    first = len(parent_fields)
    # Identifiers come from the models' metadata; every value is a parameter.
    sql = (
        f"WITH parent AS (INSERT INTO {quote(parent_model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in parent_fields)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, first + 1))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(parent_model._meta.pk.column)} AS id), "
        f"child AS (INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}, {quote(link.column)}) "
        f"SELECT {', '.join(f'${first + i}' for i in range(1, len(fields) + 1))}, parent.id FROM parent "
        f"ON CONFLICT DO NOTHING RETURNING {quote(model._meta.pk.column)} AS id) "
        "SELECT (SELECT id FROM parent), (SELECT id FROM child)"
    )
    return f"rs_insert_{parent_model._meta.db_table}_{model._meta.db_table}", sql, parent_fields, fields
