"""The orders' floor (issue 15): how fast could `POST /api/v1/conversions` be on this machine at all?

Two costs no order path can avoid, measured in one run:

- the bare request: gunicorn as the Procfile runs it answering the bare 302 view (the loop benchmark's baseline),
  wrk at 32 connections;
- the order's database work: the exact statements one real order sends (captured from an order posted through
  Django in-process: the Idempotency-Key's lock and lookup, the attribution facts, the inserts, the stored
  response, BEGIN and COMMIT), replayed by 4 bare psycopg2 client processes (as many as the server's workers) with
  a new order id, customer and key each time, for `seconds`.

Both are CPU-bound on the same cores, so an order can cost no less than the two together:
ceiling = 1 / (1 / bare + 1 / database), and ceiling / bare is the best orders/bare ratio any Python could reach
here. The loop benchmark's measured ratio and what is left for our Python per order are set beside it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import re
import sys
import time
import uuid

from bench.harness import gunicorn, machine, say, shipped_servers, write_section, wrk

CLIENTS = 4
CONNECTIONS = 32


def _capture(seeded: dict) -> dict:
    """The statements of one order posted in-process (after a first order has prepared what it prepares)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    app = WSGIHandler()

    def post(token: str, code: str) -> None:
        body = json.dumps(
            {"order_id": token, "amount": "123.45", "currency": "PLN", "code": code, "ip": "203.0.113.7",
             "customer": {"external_id": token, "email": f"buyer-{token}@example.com"},
             "user_agent": "Mozilla/5.0 (iPhone) Safari/604.1"}
        ).encode()  # fmt: skip
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/conversions", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Bearer {seeded['key']}", "HTTP_IDEMPOTENCY_KEY": token,
            "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1",
        }  # fmt: skip
        answered = {}
        b"".join(app(environ, lambda status, headers, exc_info=None: answered.setdefault("status", status)))
        if not answered["status"].startswith("201"):
            raise RuntimeError(f"the captured order was answered {answered['status']}")

    statements: list[str] = []

    def record(execute, sql, params, many, context):
        with connection.connection.cursor() as cursor:
            statements.append(cursor.mogrify(sql, params).decode() if params else sql)
        return execute(sql, params, many, context)

    connection.close()
    with connection.execute_wrapper(record):
        post(f"floor{uuid.uuid4().hex[:10]}", seeded["codes"][0])
        first = len(statements)
        token = f"floor{uuid.uuid4().hex[:10]}"
        post(token, seeded["codes"][1])
    from referral_saas.idempotency import _lock_id

    # What a connection does once (prepare its statements, plan them) is not the order's work; nor is the API key's
    # last_used_at, written once a minute.
    once = ("PREPARE", "SET ", "RESET ", "EXPLAIN ", 'UPDATE "tenancy_apikey"')
    return {
        "prepare": list({s.split(" AS ")[0]: s for s in statements if s.startswith("PREPARE")}.values()),
        "order": [s for s in statements[first:] if not s.startswith(once)],
        "token": token,
        "lock": str(_lock_id(seeded["merchant"].pk, True, token)),
    }


def _client(dsn: str, captured: dict, seconds: float, done, cpu) -> None:
    import psycopg2

    connection = psycopg2.connect(dsn)
    cursor = connection.cursor()
    for statement in captured["prepare"]:
        cursor.execute(statement)
    connection.commit()
    token, lock, count = captured["token"], captured["lock"], 0
    started, deadline = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        new = f"fl{uuid.uuid4().hex[:14]}"
        new_lock = str(random.randint(1, 2**62))  # a lock id, not a secret
        for statement in captured["order"]:
            cursor.execute(statement.replace(token, new).replace(token.lower(), new.lower()).replace(lock, new_lock))
        connection.commit()
        count += 1
    with done.get_lock():
        done.value += count
        cpu.value += time.process_time() - started
    connection.close()


def _busy_jiffies() -> int:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def database_rate(captured: dict, *, seconds: int, clients: int = CLIENTS) -> dict:
    """Orders/s of the captured statements alone, and the machine's CPU per order meanwhile."""
    from django.db import connection

    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432} "
        f"user={settings['USER'] or 'postgres'} dbname={settings['NAME']}"
        + (f" password={settings['PASSWORD']}" if settings["PASSWORD"] else "")
    )
    done, cpu = multiprocessing.Value("i", 0), multiprocessing.Value("d", 0.0)
    workers = [
        multiprocessing.Process(target=_client, args=(dsn, captured, seconds, done, cpu)) for _ in range(clients)
    ]
    busy, started = _busy_jiffies(), time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, busy = time.monotonic() - started, _busy_jiffies() - busy
    clients_cpu = cpu.value
    return {
        "orders": done.value,
        "rate": done.value / elapsed,
        "machine_cpu_ms_per_order": busy / os.sysconf("SC_CLK_TCK") / max(done.value, 1) * 1000,
        "clients_cpu_ms_per_order": clients_cpu / max(done.value, 1) * 1000,
    }


def run(*, seconds: int = 15, rounds: int = 3) -> dict:
    from bench.loop import seeded_environment

    env, seeded = seeded_environment()
    captured = _capture(seeded)
    say(f"captured {len(captured['order'])} statements per order (plus BEGIN and COMMIT); a warm-up replay")
    database_rate(captured, seconds=max(5, seconds // 2))
    server = shipped_servers()[0]
    results: dict = {"machine": machine(), "server": server.label, "rounds": []}
    for round_ in range(1, rounds + 1):
        with gunicorn(env, server) as base:
            say(f"round {round_}: the bare view for {seconds} s")
            wrk(f"{base}/bench/bare-302", seconds=max(2, seconds // 3), connections=CONNECTIONS)
            bare = wrk(f"{base}/bench/bare-302", seconds=seconds, connections=CONNECTIONS)
        say(f"round {round_}: the order's statements alone, {CLIENTS} clients for {seconds} s")
        database = database_rate(captured, seconds=seconds)
        ceiling = 1 / (1 / bare.rps + 1 / database["rate"])
        results["rounds"].append(
            {"bare": bare.rps, **database, "ceiling": ceiling, "ceiling_ratio": ceiling / bare.rps}
        )
    _report(results, captured)
    return results


def _names(captured: dict) -> list[str]:
    return [name for statement in captured["order"] for name in re.findall(r"EXECUTE (\w+)", statement)]


def _report(results: dict, captured: dict) -> None:
    rows = [
        f"| {i} | {r['bare']:,.0f} | {r['rate']:,.0f} | {r['machine_cpu_ms_per_order']:.2f} "
        f"| {r['clients_cpu_ms_per_order']:.2f} | {r['ceiling']:,.0f} | **{r['ceiling_ratio']:.2f}** |"
        for i, r in enumerate(results["rounds"], 1)
    ]
    write_section(
        "orders-floor",
        "\n".join(
            [
                "## The orders' floor: the bare request plus the order's database work",
                "",
                f"`python -m bench floor` — machine: {results['machine']}; server {results['server']}. The bare 302 "
                f"view through gunicorn (wrk, {CONNECTIONS} connections), and the {len(captured['order'])} "
                "statements one order sends (captured from an order posted through Django: "
                f"{', '.join(_names(captured))}, "
                "the first with the Idempotency-Key's advisory lock in the same round trip; plus "
                f"BEGIN and COMMIT) replayed by {CLIENTS} bare psycopg2 processes with a new order, customer and key "
                "each. Both are CPU-bound on the same cores, so no order path can answer faster than "
                "1 / (1 / bare + 1 / database): the ceiling, and ceiling / bare is the best orders/bare ratio any "
                "Python could reach on this machine.",
                "",
                "| round | bare req/s | order's SQL alone: orders/s | machine CPU per order, ms | of which the "
                "clients, ms | ceiling, orders/s | best possible orders/bare |",
                "|---|---|---|---|---|---|---|",
                *rows,
            ]
        ),
    )
