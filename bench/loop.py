"""The referral loop's hot paths, under each web server configuration we ship (issue 15).

- Click redirect `GET /r/<code>` vs a bare Django view that only answers 302 (same middleware), at 32 connections:
  throughput ratio (target >= 0.85), p99 (target < 25 ms), and afterwards clicks in PostgreSQL == non-bot 302s.
- `POST /api/v1/conversions` vs the same bare view, at 32 connections: 200 referrers whose codes are used
  round-robin, a new order, customer, amount and Idempotency-Key per request (bench/conversions.lua): throughput
  ratio (target >= 0.35), p99 (target < 60 ms), no non-2xx answer.

Both configurations are read from the files we ship (the Procfile's `web:` without --reload, the Dockerfile's CMD),
each measured with a warm-up round and then `rounds` rounds of bare-then-ours, so every ratio compares two runs
made seconds apart on the same server.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from pathlib import Path

from bench.harness import (
    RESULTS,
    LoadResult,
    ServerConfig,
    ab,
    ensure_tools,
    gunicorn,
    machine,
    redis_clear,
    say,
    shipped_servers,
    write_section,
    wrk,
)

BROWSER = (
    "User-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Mobile Safari/537.36"
)
REFERRERS = 200
HISTORY_ORDERS = 50_000
CONNECTIONS = 32
TARGETS = {"clicks": (0.85, 25), "conversions": (0.35, 60)}  # (ratio to the bare view, p99 ms)
CONVERSIONS_SCRIPT = Path(__file__).with_name("conversions.lua")
# These 2-core machines speed up under sustained load for about a minute (a pure-Python loop: 65 -> 94 million
# steps per 10 s); the orders' warm-up round lasts that long, so that the first round is not measured on the ramp.
WARMUP_SECONDS = 60


def seed(*, referrers: int = REFERRERS, history: int = HISTORY_ORDERS) -> dict:
    """A merchant with an active program, `referrers` participants with their codes (through the service, as the
    shop API makes them), `history` earlier orders, and a live API key."""
    from programs.models import Program
    from referral_saas.tenancy import services
    from tracking.services import participant_upsert

    merchant = services.merchant_create(name="Bench Shop", owner_email="bench@example.com", default_currency="PLN")
    _key, raw_key = services.apikey_create(merchant=merchant, name="bench")
    program = Program.objects.for_merchant(merchant).create(
        name="Bench", slug="bench", status="active", currency="PLN", landing_url="https://shop.example/landing?src=x"
    )
    say(f"seeding {referrers} referrers")
    codes = []
    for n in range(referrers):
        _participant, code, _created = participant_upsert(
            merchant=merchant,
            livemode=True,
            program=program,
            external_id=f"referrer-{n}",
            email=f"referrer{n}@example.com",
            name=f"Referrer {n}",
        )
        codes.append(code)
    _history(merchant=merchant, program=program, code=codes[0], orders=history)
    return {"merchant": merchant, "program": program, "key": raw_key, "codes": [c.code for c in codes]}


def _settle(*tables: str) -> None:
    """VACUUM ANALYZE what a load phase just filled, so that autovacuum catching up on it (on the same two cores)
    does not land in the middle of the next measurement. A busy production database spreads that work evenly."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def _history(*, merchant, program, code, orders: int) -> None:
    """A merchant with a past: `orders` earlier orders (a third of them referred), then VACUUM ANALYZE.

    Measuring against empty tables would measure PostgreSQL's first minutes instead (autovacuum runs again and
    again while a table is small, and plans are made from empty statistics).
    """
    from django.db import connection

    say(f"seeding {orders} past orders")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tracking_referral (merchant_id, livemode, program_id, referrer_id, code_id, referee_email,
                referee_email_normalized, status, rejection_reason, touched_at, converted_at, created_at)
            SELECT %(m)s, true, %(p)s, %(r)s, %(c)s, 'past' || g || '@example.com', 'past' || g || '@example.com',
                'converted', '', now() - interval '200 days', now() - interval '190 days', now() - interval '200 days'
            FROM generate_series(1, %(n)s / 3) AS g
            """,
            {"m": merchant.pk, "p": program.pk, "r": code.participant_id, "c": code.pk, "n": orders},
        )
        cursor.execute(
            """
            INSERT INTO tracking_conversion (merchant_id, livemode, order_id, amount, currency, refunded_amount,
                customer_external_id, customer_email, customer_email_normalized, status, rejection_reason,
                program_id, referral_id, code_given, is_new_customer, occurred_at, ip_hash, user_agent,
                payment_fingerprint, address_hash, device_id, created_at)
            SELECT %(m)s, true, 'past-' || g, 59.90, 'PLN', 0, 'past-' || g, 'past' || g || '@example.com',
                'past' || g || '@example.com', CASE WHEN g %% 3 = 0 THEN 'attributed' ELSE 'unattributed' END, '',
                %(p)s, NULL, '', true, now() - interval '190 days' + g * interval '1 minute', '', '', '', '', '',
                now() - interval '190 days'
            FROM generate_series(1, %(n)s) AS g
            """,
            {"m": merchant.pk, "p": program.pk, "n": orders},
        )
    _settle(
        "tracking_conversion", "tracking_referral", "tracking_referralcode", "programs_participant",
        "tenancy_idempotencyrecord",
    )  # fmt: skip


def conversion_load(base: str, seeded: dict, *, seconds: int, connections: int = CONNECTIONS) -> LoadResult:
    """wrk posting orders (bench/conversions.lua) for `seconds`."""
    env = {"BENCH_KEY": seeded["key"], "BENCH_CODES": ",".join(seeded["codes"]), "BENCH_RUN": uuid.uuid4().hex[:12]}
    return wrk(
        f"{base}/api/v1/conversions", seconds=seconds, connections=connections, script=CONVERSIONS_SCRIPT, env=env
    )


def _measure(server: ServerConfig, env: dict, seeded: dict, *, click_requests: int, seconds: int, rounds: int):
    """Warm-up, then `rounds` rounds of clicks and of conversions, each round the bare view then ours."""
    from tracking.clicks import clicks_ingest, stream_backlog
    from tracking.models import Click

    merchant, codes = seeded["merchant"], seeded["codes"]
    clicks_before = Click.objects.for_merchant(merchant).filter(is_bot=False).count()
    result: dict = {"server": server.label, "clicks": [], "conversions": []}
    clicks_sent = 0
    with gunicorn(env, server) as base:
        bare = f"{base}/bench/bare-302"
        say(f"{server.name}: warm-up round (clicks, then {seconds} s of orders)")
        ab(bare, requests=click_requests // 4, connections=CONNECTIONS, headers=[BROWSER])
        warm = ab(f"{base}/r/{codes[0]}", requests=click_requests // 4, connections=CONNECTIONS, headers=[BROWSER])
        clicks_sent += warm.requests - warm.failed
        wrk(bare, seconds=max(2, seconds // 3), connections=CONNECTIONS)
        result["conversion_warmup"] = vars(conversion_load(base, seeded, seconds=max(seconds, WARMUP_SECONDS)))

        for round_ in range(1, rounds + 1):
            # A different referrer's link each round (ab repeats one URL; the redirect caches codes per process).
            click = f"{base}/r/{codes[round_ % len(codes)]}"
            say(f"{server.name}: clicks round {round_}: {click_requests} requests, bare then /r/<code>")
            bare_result = ab(bare, requests=click_requests, connections=CONNECTIONS, headers=[BROWSER])
            ours = ab(click, requests=click_requests, connections=CONNECTIONS, headers=[BROWSER])
            clicks_sent += ours.requests - ours.failed
            result["clicks"].append({"bare": vars(bare_result), "ours": vars(ours)})
        for round_ in range(1, rounds + 1):
            say(f"{server.name}: conversions round {round_}: {seconds} s, bare then POST /api/v1/conversions")
            bare_result = wrk(bare, seconds=seconds, connections=CONNECTIONS)
            ours = conversion_load(base, seeded, seconds=seconds)
            result["conversions"].append({"bare": vars(bare_result), "ours": vars(ours)})

    say(f"{server.name}: draining the click stream into PostgreSQL")
    started, ingested = time.monotonic(), 0
    while stream_backlog():
        ingested += clicks_ingest(consumer="bench", max_seconds=60)
    drain = time.monotonic() - started
    stored = Click.objects.for_merchant(merchant).filter(is_bot=False).count() - clicks_before
    result["click_accounting"] = {
        "302s_answered": clicks_sent,
        "clicks_in_postgres": stored,
        "lost": clicks_sent - stored,
        "ingest_seconds": round(drain, 2),
        "ingest_rate_per_s": round(ingested / drain) if drain else None,
    }
    _settle("tracking_click", "tracking_conversion", "tracking_referral", "tenancy_idempotencyrecord")
    return result


def seeded_environment() -> tuple[dict, dict]:
    """The benchmark database (new), migrated and seeded (`seed`), and its Redis namespace emptied: (env, seeded)."""
    import django

    ensure_tools()
    from bench.harness import bench_environment

    env = bench_environment()
    os.environ.update(env)
    django.setup()
    from django.core.management import call_command

    say("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    redis_clear()
    return env, seed()


def run(*, click_requests: int, seconds: int, rounds: int, servers: list[str] | None = None) -> dict:
    env, seeded = seeded_environment()
    configs = distinct([s for s in shipped_servers() if not servers or s.name.lower() in servers])
    results: dict = {
        "machine": machine(),
        "rounds": rounds,
        "seconds": seconds,
        "click_requests": click_requests,
        "referrers": len(seeded["codes"]),
        "servers": [],
    }
    for server in configs:
        results["servers"].append(
            _measure(server, env, seeded, click_requests=click_requests, seconds=seconds, rounds=rounds)
        )

    from tracking.models import Conversion

    conversions = Conversion.objects.for_merchant(seeded["merchant"]).exclude(order_id__startswith="past-")
    results["conversion_accounting"] = {
        "attributed": conversions.filter(status="attributed").count(),
        "other": conversions.exclude(status="attributed").count(),
        "referrers_credited": conversions.filter(status="attributed").values("referral__referrer").distinct().count(),
    }
    _report(results)
    return results


def distinct(configs: list[ServerConfig]) -> list[ServerConfig]:
    """The configurations to measure: files that run the same gunicorn options are one server, measured once (the
    Procfile and the Dockerfile both run 4 sync workers since issue 15)."""
    merged: dict[tuple[str, ...], ServerConfig] = {}
    for config in configs:
        seen = merged.get(config.args)
        merged[config.args] = (
            ServerConfig(f"{seen.name} and {config.name}", f"{seen.source}, {config.source}", config.args)
            if seen
            else config
        )
    return list(merged.values())


def summary(pairs: list[dict]) -> dict:
    ratios = [pair["ours"]["rps"] / pair["bare"]["rps"] for pair in pairs]
    return {
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ours_rps_median": statistics.median(p["ours"]["rps"] for p in pairs),
        "bare_rps_median": statistics.median(p["bare"]["rps"] for p in pairs),
        "ours_p99_max": max(p["ours"]["p99_ms"] for p in pairs),
        "ours_p99_median": statistics.median(p["ours"]["p99_ms"] for p in pairs),
        "bare_p99_median": statistics.median(p["bare"]["p99_ms"] for p in pairs),
        # A replayed answer is an error too: every request of a round must be a new order.
        "errors": sum(p["ours"]["failed"] + p["ours"]["non_2xx_3xx"] + p["ours"].get("replayed", 0) for p in pairs),
    }


def _report(results: dict) -> None:
    for server in results["servers"]:
        server["summary"] = {path: summary(server[path]) for path in ("clicks", "conversions")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "loop.json").write_text(json.dumps(results, indent=2, default=str))
    verdict = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    labels = {"clicks": "`GET /r/<code>`", "conversions": "`POST /api/v1/conversions`"}

    table = [
        "| path | server | ratio to bare (median, rounds) | req/s ours / bare | p99 ms (median, worst; bare) | errors "
        "| target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in ("clicks", "conversions"):
        ratio_target, p99_target = TARGETS[path]
        for server in results["servers"]:
            s = server["summary"][path]
            ok = s["ratio_median"] >= ratio_target and s["ours_p99_max"] < p99_target and s["errors"] == 0
            table.append(
                f"| {labels[path]} | {server['server']} | **{s['ratio_median']:.2f}** ({s['ratio_min']:.2f}-"
                f"{s['ratio_max']:.2f}) | {s['ours_rps_median']:,.0f} / {s['bare_rps_median']:,.0f} "
                f"| {s['ours_p99_median']:.0f}, {s['ours_p99_max']:.0f}; {s['bare_p99_median']:.0f} | {s['errors']} "
                f"| >= {ratio_target}, p99 < {p99_target} ms, 0 errors | {verdict(ok)} |"
            )
    accounting = []
    for server in results["servers"]:
        a = server["click_accounting"]
        accounting.append(
            f"| {server['server']} | {a['302s_answered']:,} | {a['clicks_in_postgres']:,} | {a['lost']} "
            f"| {a['ingest_rate_per_s']} clicks/s | {verdict(a['lost'] == 0)} |"
        )
    rounds = []
    for server in results["servers"]:
        for path, label in labels.items():
            for i, pair in enumerate(server[path], 1):
                name = server["server"].split(" (")[0]
                rounds.append(LoadResult(**pair["bare"]).row(f"{name}, round {i}: bare"))
                rounds.append(LoadResult(**pair["ours"]).row(f"{name}, round {i}: {label}"))
    warmups = ", ".join(
        f"{s['server'].split(' (')[0]} {s['conversion_warmup']['rps']:,.0f} req/s" for s in results["servers"]
    )
    c = results["conversion_accounting"]
    posted = [s["conversion_warmup"] for s in results["servers"]] + [
        pair["ours"] for s in results["servers"] for pair in s["conversions"]
    ]
    answered = sum(r["requests"] for r in posted)
    replays = sum(r.get("replayed", 0) for r in posted)
    markdown = "\n".join(
        [
            "## The referral loop: click redirect and POST /conversions, per server configuration",
            "",
            f"`python -m bench loop` — machine: {results['machine']}. Each server configuration is read from the file "
            "we ship (the Procfile's `web:` line without `--reload`, the Dockerfile's `CMD`), DEBUG off, INFO "
            "logging (one JSON access line per request), PostgreSQL, Redis and the load generator on the same "
            f"machine, {CONNECTIONS} connections (files that run the same options are one configuration, measured "
            "once). "
            f"Per configuration: a warm-up round ({WARMUP_SECONDS} s of orders), then {results['rounds']} "
            f"rounds of clicks (`ab`, {results['click_requests']:,} requests: exact counts) and {results['rounds']} "
            f"rounds of orders (`wrk` for {results['seconds']} s with bench/conversions.lua: {results['referrers']} "
            "referrers' codes round-robin, a new order, customer, amount and Idempotency-Key per request); each "
            "round measures the bare 302 view (the same middleware, a view that only answers 302) and then ours, "
            "and the ratio compares the two; p99 is wrk's or ab's, with the bare view's p99 of the same rounds "
            "beside it.",
            "",
            *table,
            "",
            "| server | non-bot 302s answered | clicks in PostgreSQL | lost | ingest drained at | |",
            "|---|---|---|---|---|---|",
            *accounting,
            "",
            f"Orders stored: {c['attributed']:,} attributed to {c['referrers_credited']} referrers, {c['other']:,} "
            f"other; wrk counted {answered:,} order requests answered (warm-ups and rounds), {replays} of them "
            "replays of an earlier key (a round must have none). "
            f"Conversion warm-up rounds: {warmups}. The database held {HISTORY_ORDERS:,} earlier orders; the "
            "tables a configuration's run filled were VACUUM ANALYZEd before the next one.",
            "",
            "<details><summary>Every round</summary>",
            "",
            "| run | connections | requests | req/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|---|",
            *rounds,
            "",
            "</details>",
        ]
    )
    path = write_section("referral-loop", markdown)
    print("\n" + markdown + "\n")
    say(f"written to {path}")
