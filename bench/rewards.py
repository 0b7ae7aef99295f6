"""Rewards pipeline throughput (issue 15: score + decide + issue, batched).

10,000 attributed orders (1,000 referrers x 10 friends; the orders happened over 60 days and were all received in
the last few minutes, as an import or a flash sale leaves them) wait for the rewards pipeline, each with its
`rewards.process_conversion` message queued. The Procfile's worker command (its queues, concurrency and log level)
scores each order for fraud and decides its rewards: a double-sided program, the referrer's amount-off coupon worth
10% of the order, the friend's 10% coupon, and the friend becomes a participant with their own code. Reported:
orders per second until every order is decided, until the queue is empty, duplicates and missing work (both must be
0), and in this process, on orders of the same data set: the old per-order path (`conversion_process`, one order per
transaction) against the batched one (`conversions_process`), each SQL statement counted and timed (time inside
cursor.execute = PostgreSQL + the round trip; the rest = Python).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from unittest import mock

from bench.harness import RESULTS, ROOT, machine, say, write_section

REFERRERS = 1000
FRIENDS_EACH = 10
OLD_SAMPLE = 200  # orders decided one at a time (the old path), in this process
NEW_SAMPLE = 1000  # orders decided in batches, in this process


def _seed(*, referrers: int, friends_each: int, prefix: str = "") -> dict:
    from django.db import connection

    from programs.models import Program
    from referral_saas.tenancy import services
    from rewards.models import Kind, RewardRule, Side

    merchant = services.merchant_create(name="Bench Rewards", owner_email="bench@example.com", default_currency="PLN")
    program = Program.objects.for_merchant(merchant).create(
        name="Bench", slug="bench", status="active", currency="PLN", landing_url="https://shop.example/"
    )
    program.starts_on = program.starts_on.replace(year=program.starts_on.year - 1)
    program.save()
    from rewards.services import reward_rule_create

    reward_rule_create(
        merchant=merchant, program=program, name="referrer", side=Side.REFERRER, kind=Kind.AMOUNT_COUPON,
        value_type=RewardRule.ValueType.PERCENT_OF_ORDER, value=10, hold_days=30,
    )  # fmt: skip
    reward_rule_create(
        merchant=merchant, program=program, name="friend", side=Side.REFEREE, kind=Kind.PERCENT_COUPON, value=10,
        hold_days=30,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO programs_participant (merchant_id, livemode, external_id, email, email_normalized, name,
                language, status, marketing_consent, created_at)
            SELECT %(m)s, true, 'ref-' || g, 'ref' || g || '@example.com', 'ref' || g || '@example.com',
                'Referrer ' || g, 'en', 'active', false, now() - interval '90 days'
            FROM generate_series(1, %(n)s) AS g
            """,
            {"m": merchant.pk, "n": referrers},
        )
        cursor.execute(
            """
            INSERT INTO tracking_referralcode (merchant_id, livemode, program_id, participant_id, code,
                code_normalized, is_vanity, status, created_at)
            SELECT p.merchant_id, true, %(p)s, p.id, 'REF' || p.id, 'REF' || p.id, false, 'active', p.created_at
            FROM programs_participant p WHERE p.merchant_id = %(m)s
            """,
            {"m": merchant.pk, "p": program.pk},
        )
        cursor.execute(
            """
            INSERT INTO tracking_referral (merchant_id, livemode, program_id, referrer_id, code_id,
                referee_external_id, referee_email, referee_email_normalized, status, rejection_reason,
                touched_at, converted_at, created_at)
            SELECT c.merchant_id, true, c.program_id, c.participant_id, c.id,
                'friend-' || c.id || '-' || f, 'friend' || c.id || '-' || f || '@example.org',
                'friend' || c.id || '-' || f || '@example.org', 'converted', '',
                now() - (c.id %% 60) * interval '1 day' - f * interval '1 hour',
                now() - (c.id %% 60) * interval '1 day' - f * interval '1 hour' + interval '2 hours',
                now() - (c.id %% 60) * interval '1 day' - f * interval '1 hour'
            FROM tracking_referralcode c, generate_series(1, %(f)s) AS f WHERE c.merchant_id = %(m)s
            """,
            {"m": merchant.pk, "f": friends_each},
        )
        cursor.execute(
            """
            INSERT INTO tracking_conversion (merchant_id, livemode, order_id, amount, currency, refunded_amount,
                customer_external_id, customer_email, customer_email_normalized, status, rejection_reason,
                program_id, referral_id, code_given, is_new_customer, occurred_at, ip_hash, user_agent,
                payment_fingerprint, address_hash, device_id, created_at)
            SELECT r.merchant_id, true, 'order-' || r.id, 50 + (r.id %% 200) + 0.99, 'PLN', 0,
                r.referee_external_id, r.referee_email, r.referee_email_normalized, 'attributed', '',
                r.program_id, r.id, '', true, r.converted_at, '', '', '', '', '',
                now() - interval '5 minutes' + row_number() OVER (ORDER BY r.id) * interval '10 milliseconds'
            FROM tracking_referral r WHERE r.merchant_id = %(m)s
            """,
            {"m": merchant.pk},
        )
        for table in ("programs_participant", "tracking_referralcode", "tracking_referral", "tracking_conversion"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    from tracking.models import Conversion

    ids = list(Conversion.objects.for_merchant(merchant).order_by("pk").values_list("pk", flat=True))
    return {"merchant": merchant, "program": program, "conversion_ids": ids}


def procfile_worker() -> list[str]:
    """The Procfile's `worker:` command line, run with this interpreter (its queues, concurrency and log level)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("worker:"):
            args = shlex.split(line.partition(":")[2])
            return [sys.executable, "-m", "celery", *args[1:]]
    raise RuntimeError("the Procfile has no worker")


def _worker(env: dict[str, str], name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*procfile_worker(), "--hostname", f"{name}@%h"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc


def _counts(merchant) -> dict:
    from django.db.models import Count

    from rewards.models import Reward, Work

    done = Work.objects.for_merchant(merchant).filter(stage="done", refund__isnull=True).count()
    rewards = Reward.objects.for_merchant(merchant).count()
    duplicates = (
        Reward.objects.for_merchant(merchant)
        .values("rule_id", "conversion_id", "side")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    return {"done": done, "rewards": rewards, "duplicates": duplicates}


def _profile(merchant, conversion_ids: list[int], *, batched: bool) -> dict:
    """Decide these orders in this process, counting and timing every SQL statement: one at a time with the old
    per-order service, or as the worker's task does now (each call decides a batch of the orders after it)."""
    from django.conf import settings
    from django.db import connection

    from rewards.models import Work
    from rewards.services import conversion_process, conversions_process

    spent = {"sql": 0.0, "queries": 0}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["sql"] += time.perf_counter() - started
            spent["queries"] += 1

    remaining = list(conversion_ids)  # in the order they were received (a batch claims in that order)
    started = time.perf_counter()
    with connection.execute_wrapper(timed), mock.patch("rewards.services.batch.enqueue_now"):
        # (No follow-up messages from here: the worker's queue is the rest of the run's.)
        while remaining:
            if not batched:
                conversion_process(merchant=merchant, conversion_id=remaining.pop(0))
                continue
            # One message's task: a batch of the sample's next orders, never past the sample.
            limit = min(settings.REWARDS_BATCH_SIZE, len(remaining))
            conversions_process(merchant=merchant, conversion_id=remaining[0], limit=limit)
            del remaining[:limit]
    total = time.perf_counter() - started
    decided = Work.objects.for_merchant(merchant).filter(conversion_id__in=conversion_ids).count()
    return {
        "conversions": len(conversion_ids),
        "decided": decided,
        "decided_in_all": Work.objects.for_merchant(merchant).count(),
        "seconds": round(total, 2),
        "per_conversion_ms": round(1000 * total / len(conversion_ids), 2),
        "queries_per_conversion": round(spent["queries"] / len(conversion_ids), 1),
        "sql_share": round(spent["sql"] / total, 3),
    }


def run() -> dict:
    import django

    from bench.harness import bench_environment

    env = bench_environment()
    # A Redis namespace of this run's own (the bench Redis db is shared): no other run's worker takes its messages.
    env["REDIS_NAMESPACE"] = f"bench-rewards-{os.getpid()}"
    os.environ.update(env)
    django.setup()
    from django.core.management import call_command

    say("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    from django.conf import settings

    from referral_saas.celery import conversions_key, enqueue_coalesced_on_commit
    from referral_saas.redis_client import get_redis

    say(f"seeding {REFERRERS * FRIENDS_EACH} attributed orders ({REFERRERS} referrers x {FRIENDS_EACH} friends)")
    seeded = _seed(referrers=REFERRERS, friends_each=FRIENDS_EACH)
    merchant, ids = seeded["merchant"], seeded["conversion_ids"]
    old_sample, new_sample = ids[:OLD_SAMPLE], ids[OLD_SAMPLE : OLD_SAMPLE + NEW_SAMPLE]
    queued = ids[OLD_SAMPLE + NEW_SAMPLE :]
    say(f"in this process: {len(old_sample)} orders one at a time (the old path), {len(new_sample)} in batches")
    old = _profile(merchant, old_sample, batched=False)
    new = _profile(merchant, new_sample, batched=True)
    say(f"  old: {old['per_conversion_ms']} ms, {old['queries_per_conversion']} SQL per order")
    say(f"  batched: {new['per_conversion_ms']} ms, {new['queries_per_conversion']} SQL per order")
    before = _counts(merchant)["done"]
    say(f"{len(queued)} orders send their rewards.process_conversion message as the API does (coalesced)")
    broker = get_redis()
    queue_key = f"{env['REDIS_NAMESPACE']}:celery:rewards"
    waiting = broker.llen(queue_key)  # the in-process samples' emails
    for pk in queued:  # outside a transaction: sent (or coalesced) at once
        enqueue_coalesced_on_commit(
            "rewards.process_conversion", key=conversions_key(merchant.pk), merchant_id=merchant.pk, conversion_id=pk
        )
    messages = broker.llen(queue_key) - waiting
    say(f"  {messages} message(s) queued")
    workers = [_worker(env, "bench")]
    command = " ".join(procfile_worker()[3:])
    try:
        say(f"the Procfile's worker started ({command}); timing from the first order it decides")
        deadline = time.monotonic() + 1800
        while _counts(merchant)["done"] == before:
            time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("the worker decided nothing")
        started = time.monotonic()
        before = last = _counts(merchant)["done"]  # the first batch is timed from its commit: left out of the rate
        while True:
            time.sleep(0.5)
            counts = _counts(merchant)
            if counts["done"] != last:
                say(f"  {counts['done'] - OLD_SAMPLE - NEW_SAMPLE:>6} / {len(queued)} decided")
                last = counts["done"]
            if counts["done"] >= len(ids) or time.monotonic() > deadline:
                break
        elapsed = time.monotonic() - started
        while broker.llen(queue_key) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained = time.monotonic() - started
    finally:
        for proc in workers:
            os.killpg(proc.pid, 15)
        for proc in workers:
            proc.wait(30)
        for key in broker.scan_iter(f"{env['REDIS_NAMESPACE']}:*"):
            broker.delete(key)
    counts = _counts(merchant)
    decided = counts["done"] - before
    rate = decided / elapsed
    say(f"decided {decided} orders: {rate:.0f} orders/s; queue empty after {drained:.1f} s")
    results = {
        "machine": machine(),
        "load_average": [round(x, 1) for x in os.getloadavg()],  # the other processes sharing the machine
        "orders": len(ids),
        "worker": command,
        "batch_size": settings.REWARDS_BATCH_SIZE,
        "queued": len(queued),
        "messages": messages,
        "orders_per_second": round(rate, 1),
        "seconds": round(elapsed, 1),
        "drained_seconds": round(drained, 1),
        "drained_per_second": round(len(queued) / drained, 1),  # orders, until the queue is empty (emails too)
        "decided": decided,
        "missing": len(ids) - counts["done"],
        "rewards": counts["rewards"],
        "expected_rewards": 2 * len(ids),
        "duplicates": counts["duplicates"],
        "old_path": old,
        "batched_path": new,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rewards.json").write_text(json.dumps(results, indent=2))
    _write(results)
    return results


def _write(r: dict) -> None:
    old, new = r["old_path"], r["batched_path"]
    drained = f"{r['drained_per_second']} orders/s ({r['drained_seconds']} s)"
    sql = {name: f"{100 * path['sql_share']:.0f}%" for name, path in (("old", old), ("new", new))}
    write_section(
        "rewards-pipeline",
        f"""
## Rewards pipeline: scoring + deciding 10,000 attributed orders

`python -m bench rewards` — {r["machine"]}, 5-minute load average {r["load_average"][1]} at the end (other processes
shared the machine: compare the two paths within this run, not with runs elsewhere). {r["queued"]:,} orders wait,
their `rewards.process_conversion` messages sent as the API sends them (coalesced into {r["messages"]}), for
the Procfile's worker (`celery {r["worker"]}`), batches of up to {r["batch_size"]} orders
(`REWARDS_BATCH_SIZE`); each order is scored for fraud (every check) and its rewards
decided (the referrer's amount-off coupon worth 10% of the order and the friend's 10% coupon; the friend becomes a
participant with their own code). The orders were received over the last five minutes, as an import or a flash
sale leaves them.

| the Procfile's worker | |
|---|---|
| throughput, every order decided | **{r["orders_per_second"]} orders/s** ({r["decided"]:,} in {r["seconds"]} s) |
| until the queue is empty (emails included) | {drained} |
| missing (orders without a finished pipeline row) | **{r["missing"]}** |
| duplicates (more than one reward per rule, order and side) | **{r["duplicates"]}** |
| rewards created | {r["rewards"]:,} of {r["expected_rewards"]:,} expected |

Same data set, in this process, every SQL statement counted and timed:

| per order | batched (`conversions_process`) | one at a time (the old `conversion_process`) |
|---|---|---|
| orders | {new["conversions"]:,} | {old["conversions"]:,} |
| SQL statements | **{new["queries_per_conversion"]}** | {old["queries_per_conversion"]} |
| time | **{new["per_conversion_ms"]} ms** | {old["per_conversion_ms"]} ms |
| PostgreSQL incl. round trips | {sql["new"]} | {sql["old"]} |
""",
    )


if __name__ == "__main__":
    run()
