"""Rewards pipeline throughput (issue: rewards, fraud scoring and webhooks).

10,000 attributed orders (1,000 referrers x 10 friends, spread over 60 days) are queued as `rewards.process_conversion`
messages; two Celery worker processes (prefork, concurrency 1 each) score each order for fraud and decide its rewards
(a double-sided program: the referrer's amount-off coupon worth 10% of the order, the friend's 10% coupon, and the
friend becomes a participant with their own code). Reported: conversions per second, duplicates and missing work
(both must be 0), and where a worker's time goes: a sample of the same work run in this process with every SQL
statement timed (time inside cursor.execute = PostgreSQL + the round trip; the rest = Python).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from bench.harness import RESULTS, ROOT, machine, say, write_section

REFERRERS = 1000
FRIENDS_EACH = 10
SAMPLE = 500


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
                r.program_id, r.id, '', true, r.converted_at, '', '', '', '', '', r.converted_at
            FROM tracking_referral r WHERE r.merchant_id = %(m)s
            """,
            {"m": merchant.pk},
        )
        for table in ("programs_participant", "tracking_referralcode", "tracking_referral", "tracking_conversion"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    from tracking.models import Conversion

    ids = list(Conversion.objects.for_merchant(merchant).order_by("pk").values_list("pk", flat=True))
    return {"merchant": merchant, "program": program, "conversion_ids": ids}


def _worker(env: dict[str, str], name: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "referral_saas", "worker", "--queues", "rewards",
         "--concurrency", "1", "--pool", "prefork", "--hostname", f"{name}@%h", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip"],
        cwd=ROOT, env={**os.environ, **env, "LOG_LEVEL": "WARNING"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
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


def _profile_sample(merchant, conversion_ids: list[int]) -> dict:
    """Run the same service in this process on fresh orders, timing every SQL statement."""
    from django.db import connection

    from rewards.services import conversion_process

    spent = {"sql": 0.0, "queries": 0}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["sql"] += time.perf_counter() - started
            spent["queries"] += 1

    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        for pk in conversion_ids:
            conversion_process(merchant=merchant, conversion_id=pk)
    total = time.perf_counter() - started
    return {
        "conversions": len(conversion_ids),
        "seconds": round(total, 2),
        "per_conversion_ms": round(1000 * total / len(conversion_ids), 2),
        "queries_per_conversion": round(spent["queries"] / len(conversion_ids), 1),
        "sql_share": round(spent["sql"] / total, 3),
    }


def run() -> dict:
    import django

    from bench.harness import bench_environment

    env = bench_environment()
    os.environ.update(env)
    django.setup()
    from django.core.management import call_command

    say("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    from referral_saas.celery import app
    from referral_saas.redis_client import get_redis

    get_redis().flushdb()
    say(f"seeding {REFERRERS * FRIENDS_EACH} attributed orders ({REFERRERS} referrers x {FRIENDS_EACH} friends)")
    seeded = _seed(referrers=REFERRERS, friends_each=FRIENDS_EACH)
    merchant, ids = seeded["merchant"], seeded["conversion_ids"]
    sample, queued = ids[:SAMPLE], ids[SAMPLE:]
    say(f"queueing {len(queued)} rewards.process_conversion messages")
    with app.producer_or_acquire() as producer:
        for pk in queued:
            app.send_task(
                "rewards.process_conversion", kwargs={"merchant_id": merchant.pk, "conversion_id": pk},
                producer=producer,
            )  # fmt: skip
    workers = [_worker(env, f"bench-{n}") for n in (1, 2)]
    try:
        say("2 worker processes started; timing from the first processed order")
        deadline = time.monotonic() + 1800
        while _counts(merchant)["done"] == 0:
            time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("workers processed nothing")
        started, first_done = time.monotonic(), _counts(merchant)["done"]
        last = first_done
        while True:
            time.sleep(1)
            counts = _counts(merchant)
            if counts["done"] != last:
                say(f"  {counts['done']:>6} / {len(queued)} processed")
                last = counts["done"]
            if counts["done"] >= len(queued) or time.monotonic() > deadline:
                break
        elapsed = time.monotonic() - started
    finally:
        for proc in workers:
            os.killpg(proc.pid, 15)
        for proc in workers:
            proc.wait(30)
    counts = _counts(merchant)
    rate = (counts["done"] - first_done) / elapsed
    expected_rewards = 2 * len(queued)
    say(f"processed {counts['done']} orders: {rate:.0f} conversions/s with 2 workers")
    say(f"profiling {len(sample)} more orders in this process")
    profile = _profile_sample(merchant, sample)
    final = _counts(merchant)
    results = {
        "machine": machine(),
        "orders": len(ids),
        "workers": 2,
        "conversions_per_second": round(rate, 1),
        "seconds": round(elapsed, 1),
        "processed": counts["done"],
        "missing": len(queued) - counts["done"],
        "rewards": counts["rewards"],
        "expected_rewards": expected_rewards,
        "duplicates": final["duplicates"],
        "profile": profile,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rewards.json").write_text(json.dumps(results, indent=2))
    _write(results)
    return results


def _write(r: dict) -> None:
    p = r["profile"]
    sql = 100 * p["sql_share"]
    write_section(
        "rewards-pipeline",
        f"""
## Rewards pipeline: scoring + deciding 10,000 attributed orders

`python -m bench rewards` — {r["machine"]}. {r["orders"] - p["conversions"]:,} queued
`rewards.process_conversion` messages, 2 Celery worker processes (prefork, concurrency 1 each) on the `rewards`
queue; each order is scored for fraud (every check), locked, and its rewards decided (the referrer's amount-off
coupon worth 10% of the order and the friend's 10% coupon; the friend becomes a participant with their own code).

| | |
|---|---|
| throughput | **{r["conversions_per_second"]} conversions/s** ({r["processed"]:,} in {r["seconds"]} s) |
| missing (orders without a finished pipeline row) | **{r["missing"]}** |
| duplicates (more than one reward per rule, order and side) | **{r["duplicates"]}** |
| rewards created | {r["rewards"]:,} of {r["expected_rewards"]:,} expected |
| one process, {p["conversions"]} more orders | {p["per_conversion_ms"]} ms and {p["queries_per_conversion"]} SQL each |
| time share (same sample) | PostgreSQL incl. round trips **{sql:.0f}%**, Python **{100 - sql:.0f}%** |
""",
    )


if __name__ == "__main__":
    run()
