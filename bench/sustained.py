"""A sustained mixed run (issue 15): clicks and orders at full speed for two minutes, then quiet.

The platform runs as the Procfile runs it: its web line (without --reload), its Celery worker and its beat. Two wrk
processes load it at once: `GET /r/<code>` over 200 referrers' codes (bench/clicks.lua) and `POST
/api/v1/conversions` with a new order, customer and amount each time (bench/conversions.lua). When the load stops,
what is still waiting is measured, then the time until it is all done:

- clicks: entries in the Redis click stream not yet moved into PostgreSQL (tracking.clicks.stream_backlog);
- orders: attributed orders (the ones the API hands to the rewards pipeline) without a `rewards.Work` row, the row the
  pipeline writes once per order when it has scored and decided it, whatever way it is organised.

Nothing lost, nothing twice: clicks in PostgreSQL == the 302s the server answered (counted from its access log, so
requests cut off when wrk stops are counted the way the server saw them), every referred order has exactly one Work
row, and no rule paid twice for one order and side.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import RESULTS, ROOT, gunicorn, machine, redis_clear, say, shipped_servers, write_section, wrk
from bench.loop import CONNECTIONS, conversion_load, seed

CLICKS_SCRIPT = Path(__file__).with_name("clicks.lua")
DRAIN_LIMIT = 600  # give up waiting for the backlog after this many seconds
TARGET_DRAIN = 120


def _procfile(name: str) -> list[str]:
    """The Procfile's `name:` command, run by this interpreter (the Procfile names the project's .venv)."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{name}:"))
    argv = shlex.split(line.split(":", 1)[1])
    return [sys.executable, "-m", Path(argv[0]).name, *argv[1:]]


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the process's output for its lifetime
    return subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(30)


def _rules(merchant, program) -> None:
    """A double-sided program, as the rewards benchmark has it: the referrer's coupon worth 10% of the order, the
    friend's 10% coupon (and the friend becomes a participant with a code)."""
    from rewards.models import Kind, RewardRule, Side
    from rewards.services import reward_rule_create

    reward_rule_create(
        merchant=merchant, program=program, name="referrer", side=Side.REFERRER, kind=Kind.AMOUNT_COUPON,
        value_type=RewardRule.ValueType.PERCENT_OF_ORDER, value=10, hold_days=30,
    )  # fmt: skip
    reward_rule_create(
        merchant=merchant, program=program, name="friend", side=Side.REFEREE, kind=Kind.PERCENT_COUPON, value=10,
        hold_days=30,
    )  # fmt: skip


def _referred_orders(merchant):
    """The orders the API hands to the rewards pipeline (tracking.attribution._record's rule), of this run."""
    from django.db.models import Q

    from tracking.models import Conversion, Referral

    return (
        Conversion.objects.for_merchant(merchant)
        .filter(referral__isnull=False)
        .filter(Q(status=Conversion.Status.ATTRIBUTED) | Q(rejection_reason=Referral.Reason.FRAUD))
        .exclude(order_id__startswith="past-")
    )


def _backlog(merchant) -> dict:
    from django.db.models import Exists, OuterRef

    from rewards.models import Work
    from tracking.clicks import stream_backlog

    decided = Work.objects.for_merchant(merchant).filter(conversion=OuterRef("pk"), refund__isnull=True)
    return {"clicks": stream_backlog(), "orders": _referred_orders(merchant).exclude(Exists(decided)).count()}


def _accounting(merchant, log: Path) -> dict:
    from django.db.models import Count

    from referral_saas.redis_client import get_redis
    from rewards.models import Reward, Work
    from tracking.clicks import DEAD_STREAM
    from tracking.models import Click, Conversion

    answered: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        path, status = entry.get("path", ""), entry.get("status")
        if path.startswith("/r/") and status == 302:
            answered["clicks"] = answered.get("clicks", 0) + 1
        elif path == "/api/v1/conversions" and entry.get("method") == "POST":
            answered[f"orders_{status}"] = answered.get(f"orders_{status}", 0) + 1
    referred = _referred_orders(merchant)
    work = Work.objects.for_merchant(merchant).filter(conversion__in=referred, refund__isnull=True)
    return {
        "302s_answered": answered.get("clicks", 0),
        "clicks_in_postgres": Click.objects.for_merchant(merchant).filter(is_bot=False).count(),
        "dead_clicks": get_redis().xlen(DEAD_STREAM),
        "orders_201": answered.get("orders_201", 0),
        "orders_other": sum(n for k, n in answered.items() if k.startswith("orders_") and k != "orders_201"),
        "orders_stored": Conversion.objects.for_merchant(merchant).exclude(order_id__startswith="past-").count(),
        "referred_orders": referred.count(),
        "decided_once": work.values("conversion_id").distinct().count(),
        "work_rows": work.count(),
        "reward_duplicates": Reward.objects.for_merchant(merchant)
        .values("rule_id", "conversion_id", "side")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "rewards": Reward.objects.for_merchant(merchant).filter(conversion__in=referred).count(),
    }


def run(*, seconds: int) -> dict:
    import django

    from bench.harness import bench_environment, ensure_tools

    ensure_tools()
    env = bench_environment()
    logs = Path(tempfile.mkdtemp(prefix="bench-sustained-"))
    env["BEAT_SCHEDULE_FILE"] = str(logs / "celerybeat-schedule")
    os.environ.update(env)
    django.setup()
    from django.core.management import call_command

    say("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    redis_clear()
    seeded = seed(history=10_000)
    merchant = seeded["merchant"]
    _rules(merchant, seeded["program"])
    server = next(s for s in shipped_servers() if s.name == "Procfile")
    worker_argv, beat_argv = _procfile("worker"), _procfile("beat")
    say(f"web: {server.label}; worker: {' '.join(worker_argv[3:])}; beat; logs in {logs}")
    worker = _start("worker", worker_argv, env, logs)
    beat = _start("beat", beat_argv, env, logs)
    web_log = logs / "web.log"
    deadline = time.monotonic() + 120
    while "ready." not in (logs / "worker.log").read_text(errors="replace"):
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"the Celery worker did not start (see {logs / 'worker.log'})")
        time.sleep(0.5)
    timeline: list[dict] = []
    try:
        with gunicorn(env, server, log=web_log) as base:
            say(f"load: clicks and orders at {CONNECTIONS} connections each for {seconds} s")
            loads: dict = {}
            click_env = {"BENCH_CODES": ",".join(seeded["codes"])}

            def clicks() -> None:
                loads["clicks"] = wrk(
                    f"{base}/r/x", seconds=seconds, connections=CONNECTIONS, script=CLICKS_SCRIPT, env=click_env
                )

            def orders() -> None:
                loads["orders"] = conversion_load(base, seeded, seconds=seconds)

            threads = [threading.Thread(target=clicks), threading.Thread(target=orders)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                time.sleep(5)
                timeline.append({"t": round(time.monotonic() - started), **_backlog(merchant)})
                say(f"  t={timeline[-1]['t']:>4}s backlog: {timeline[-1]}")
            for thread in threads:
                thread.join()
            load_seconds = time.monotonic() - started
            at_stop = _backlog(merchant)
            say(f"load stopped after {load_seconds:.0f} s; backlog {at_stop}; waiting for it to drain")
            stopped = time.monotonic()
            drained_at: dict[str, float | None] = {"clicks": None, "orders": None}
            while time.monotonic() - stopped < DRAIN_LIMIT:
                now = _backlog(merchant)
                for kind in drained_at:
                    if drained_at[kind] is None and now[kind] == 0:
                        drained_at[kind] = round(time.monotonic() - stopped, 1)
                if all(v is not None for v in drained_at.values()):
                    break
                if int(time.monotonic() - stopped) % 10 == 0:
                    say(f"  +{time.monotonic() - stopped:.0f}s backlog: {now}")
                time.sleep(1)
    finally:
        for proc in (worker, beat):
            _stop(proc)
    accounting = _accounting(merchant, web_log)
    results = {
        "machine": machine(),
        "seconds": seconds,
        "load_seconds": round(load_seconds, 1),
        "server": server.label,
        "worker": " ".join(worker_argv[3:]),
        "loads": {k: vars(v) for k, v in loads.items()},
        "backlog_at_stop": at_stop,
        "drained_after_s": drained_at,
        "timeline": timeline,
        "accounting": accounting,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sustained.json").write_text(json.dumps(results, indent=2, default=str))
    _report(results)
    return results


def _report(r: dict) -> None:
    a, at_stop, drained = r["accounting"], r["backlog_at_stop"], r["drained_after_s"]
    clicks, orders = r["loads"]["clicks"], r["loads"]["orders"]
    verdict = lambda ok: "met" if ok else "**missed**"  # noqa: E731

    def drain(kind: str) -> str:
        return f"{drained[kind]} s" if drained[kind] is not None else f"not within {DRAIN_LIMIT} s"

    drain_ok = all(v is not None and v <= TARGET_DRAIN for v in drained.values())
    clicks_ok = a["302s_answered"] == a["clicks_in_postgres"] and a["dead_clicks"] == 0
    orders_ok = a["decided_once"] == a["work_rows"] and a["reward_duplicates"] == 0
    step = max(1, len(r["timeline"]) // 8)
    timeline = ", ".join(f"{p['t']} s: {p['clicks']:,} / {p['orders']:,}" for p in r["timeline"][::step])
    load = [f"{x['requests']:,} requests, {x['rps']:,.0f}/s, p99 {x['p99_ms']:.0f} ms" for x in (clicks, orders)]
    rows = [
        ("load", *load),
        ("answered", f"{a['302s_answered']:,} redirects (302)", f"{a['orders_201']:,} created (201), "
         f"{a['orders_other']} other"),
        ("backlog when the load stopped", f"{at_stop['clicks']:,} clicks in the stream",
         f"{at_stop['orders']:,} referred orders not yet decided"),
        ("drained after the load stopped", drain("clicks"), drain("orders")),
        ("nothing lost", f"{a['clicks_in_postgres']:,} clicks in PostgreSQL, {a['dead_clicks']} dead-lettered",
         f"{a['orders_stored']:,} orders stored, {a['referred_orders']:,} referred"),
        ("nothing twice", "—", f"{a['decided_once']:,} referred orders decided, {a['work_rows']:,} Work rows, "
         f"{a['reward_duplicates']} duplicate rewards ({a['rewards']:,} reward rows)"),
    ]  # fmt: skip
    targets = [
        (f"both backlogs drained within {TARGET_DRAIN} s of the load stopping",
         f"clicks {drain('clicks')}, orders {drain('orders')}", drain_ok),
        ("clicks in PostgreSQL == non-bot 302s answered",
         f"{a['clicks_in_postgres']:,} of {a['302s_answered']:,}", clicks_ok),
        ("no order decided twice (one Work row each, no rule paid twice)",
         f"{a['work_rows']:,} Work rows for {a['decided_once']:,} orders, {a['reward_duplicates']} duplicate rewards",
         orders_ok),
        ("every referred order decided by the end",
         f"{a['decided_once']:,} of {a['referred_orders']:,}", a["decided_once"] == a["referred_orders"]),
    ]  # fmt: skip
    markdown = "\n".join(
        [
            f"## Sustained mixed load: clicks and orders for {r['seconds']} s, then quiet",
            "",
            f"`python -m bench sustained --seconds {r['seconds']}` — machine: {r['machine']}. Web: {r['server']}; "
            f"the Procfile's worker (`{r['worker']}`) and beat; DEBUG off. Two wrk processes at {CONNECTIONS} "
            "connections each, at the same time: `GET /r/<code>` over 200 referrers' codes and "
            "`POST /api/v1/conversions` (a new order, customer and amount each time, codes round-robin). The program "
            "pays both sides (the referrer's 10%-of-order coupon, the friend's 10% coupon).",
            "",
            "| | clicks | orders |",
            "|---|---|---|",
            *(f"| {label} | {c} | {o} |" for label, c, o in rows),
            "",
            "| target | result | |",
            "|---|---|---|",
            *(f"| {label} | {value} | {verdict(ok)} |" for label, value, ok in targets),
            "",
            "Backlog during the load (seconds since the start: clicks in the stream / referred orders undecided): "
            f"{timeline}. An order counts as decided when the pipeline has written its `rewards.Work` row (one per "
            "order, a unique constraint); the 302s are counted from the server's access log.",
        ]
    )
    path = write_section("sustained", markdown)
    print(markdown)
    say(f"written to {path}")
