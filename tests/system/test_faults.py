"""Faults, with real processes: a worker SIGKILLed mid-transaction, a Redis that hangs, PostgreSQL restarted under
load, a poison entry in the click stream. The system answers cleanly while it hurts and heals without a restart."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest
import redis
import requests
from django.conf import settings

from tests.system.stack import Browser, EmbeddedPostgres, HangingRedis, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _waiting_backends(database_url: str, table: str) -> list[int]:
    """Pids of backends blocked on a lock while running a statement that names `table`."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND query LIKE %s",
            [f"%{table}%"],
        )
        pids = [row[0] for row in cursor.fetchall()]
    conn.close()
    return pids


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_killed_while_it_creates_an_orders_rewards_is_redelivered_by_celery_and_pays_once(
    stacks, broker, own_database
):
    # The broker's own redelivery: a message whose worker died goes back to the queue (Redis: after the visibility
    # timeout; RabbitMQ: when the worker's connection drops). No beat, so no sweeper can be what finishes the work
    # (and a database of its own: the package's stacks run beat).
    stack = stacks(
        "procfile", name=f"kill-{broker}", broker=broker, env={"BROKER_VISIBILITY_TIMEOUT": "10"}, beat=False,
        database=own_database, migrate=True,
    )  # fmt: skip
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)

    # The merchant adds a second reward in the admin: 50 points, at most 5 per referrer (a cap locks the referrer).
    browser = Browser(stack.base_url)
    browser.sign_in(shop.owner_email, shop.password)
    saved = browser.submit(
        "/admin/rewards/rewardrule/add/",
        name="Referrer: 50 points", program="Bring a friend", side="referrer", trigger="first_purchase",
        kind="points", value_type="fixed", value="50", hold_days="0", cap_total="5",
    )  # fmt: skip
    assert saved.status_code == 302, saved.text[-3000:]

    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"}
    ).json()

    # Hold Anna's row as another transaction would: the worker inserts the coupon reward, then waits here for the
    # points rule's cap check, in the middle of creating the order's rewards.
    blocker = psycopg2.connect(stack.env["DATABASE_URL"])
    with blocker.cursor() as cursor:
        cursor.execute("SELECT id FROM programs_participant WHERE id = %s FOR NO KEY UPDATE", [anna["id"]])
    try:
        order = api.post(
            "/api/v1/conversions",
            json={"order_id": "K-1", "amount": "250.00", "currency": "PLN", "code": anna["code"],
                  "customer": {"external_id": "bob", "email": "bob@example.pl"}},
        )  # fmt: skip
        assert order.status_code == 201, order.text
        wait_for(
            lambda: _waiting_backends(stack.env["DATABASE_URL"], "programs_participant"),
            what="the worker to wait inside the order's transaction",
        )
        with psycopg2.connect(stack.env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rewards_reward WHERE participant_id = %s", [anna["id"]])
            assert cursor.fetchone()[0] == 0  # what it inserted is not committed
        conn.close()
        stack.processes["worker"].kill()  # SIGKILL, the worker's whole process group
        killed_task = re.search(
            r"rewards\.process_conversion\[([0-9a-f-]+)\] received", stack.processes["worker"].output()
        )
        assert killed_task, "the killed worker had received the order's task"
    finally:
        blocker.rollback()
        blocker.close()

    # A new worker: the broker gives the unacknowledged message back and the new worker runs it again.
    stack.start_worker("worker-2")

    def rewards():
        found = api.get("/api/v1/rewards", params={"participant": anna["id"]}).json()["results"]
        return found if len(found) == 2 and all(r["status"] == "issued" for r in found) else None

    found = wait_for(rewards, timeout=120, what="the order's two rewards to be created and issued")
    assert sorted(r["kind"] for r in found) == ["amount_coupon", "points"]
    assert {r["order_id"] for r in found} == {"K-1"}
    points = api.get(f"/api/v1/participants/{anna['id']}/points").json()
    assert points["balance"] == 50
    assert len(points["entries"]) == 1  # one ledger entry: paid once
    # The same message, redelivered (not sent again by anyone): its task id reached the second worker.
    assert f"rewards.process_conversion[{killed_task.group(1)}] received" in stack.processes["worker-2"].output()

    if stack.rabbitmq:
        # RabbitMQ counts only what waits in the queue: once the worker has finished every task it received (the
        # order's follow-ups too), stopping it gives back whatever it still held unacknowledged: nothing.
        worker = stack.processes["worker-2"]

        def settled() -> bool:
            received = set(re.findall(r"\[([0-9a-f-]{36})\] received", worker.output()))
            finished = set(re.findall(r"\[([0-9a-f-]{36})\] (?:succeeded|raised|retry)", worker.output()))
            return received <= finished and stack.broker_queue("rewards")[0] == 0

        wait_for(settled, what="the second worker to finish every task it received")
        worker.stop()
        assert stack.broker_queue("rewards") == (0, 0)
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"{stack.namespace}:celery:"
    wait_for(lambda: client.hlen(f"{prefix}unacked") == 0, what="no message left unacknowledged")
    assert client.zcard(f"{prefix}unacked_index") == 0


def test_a_worker_killed_in_the_middle_of_a_batch_leaves_every_order_decided_once(stacks, own_database):
    # Orders wait for the pipeline (no worker yet); the first task claims them all as one batch, which then waits on
    # an email row another transaction is writing for the last order, and is killed there. Celery redelivers; no beat
    # (and a database of its own: the package's stacks run beat, whose sweeper would decide the waiting orders).
    stack = stacks(
        "procfile", name="kill-batch", env={"BROKER_VISIBILITY_TIMEOUT": "10"}, beat=False, worker=False,
        database=own_database, migrate=True,
    )  # fmt: skip
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"}
    ).json()
    ids = []
    for n in range(1, 6):  # five: a sixth friend's order within the hour would wait for a fraud review (velocity)
        order = api.post(
            "/api/v1/conversions",
            json={"order_id": f"B-{n}", "amount": "100.00", "currency": "PLN", "code": anna["code"],
                  "customer": {"external_id": f"friend-{n}", "email": f"friend{n}@example.pl"}},
        )  # fmt: skip
        assert order.status_code == 201, order.text
        ids.append(order.json()["id"])

    database = stack.env["DATABASE_URL"]
    blocker = psycopg2.connect(database)
    with blocker.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rewards_notification (merchant_id, kind, key, attempts, last_error, created_at) "
            "SELECT merchant_id, 'friend_purchased', 'conversion:' || id, 0, '', now() "
            "FROM tracking_conversion WHERE id = %s",
            [ids[-1]],
        )
    try:
        stack.start_worker("worker")
        wait_for(
            lambda: _waiting_backends(database, "rewards_notification"),
            what="the batch to wait inside its transaction, its orders' rewards inserted",
        )
        with psycopg2.connect(database) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rewards_work WHERE conversion_id = ANY(%s)", [ids])
            assert cursor.fetchone()[0] == 0  # nothing of the batch is committed
        conn.close()
        stack.processes["worker"].kill()
        killed = re.findall(r"rewards\.process_conversion\[([0-9a-f-]+)\] received", stack.processes["worker"].output())
        assert killed, "the killed worker had received an order's task"
    finally:
        blocker.rollback()
        blocker.close()

    stack.start_worker("worker-2")

    def decided():
        with psycopg2.connect(database) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rewards_work WHERE conversion_id = ANY(%s) AND stage = 'done'", [ids])
            done = cursor.fetchone()[0]
        conn.close()
        return done == len(ids)

    wait_for(decided, timeout=120, what="every order of the killed batch to be decided")
    with psycopg2.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.order_id, count(w.id) FROM tracking_conversion c "
            "LEFT JOIN rewards_work w ON w.conversion_id = c.id AND w.refund_id IS NULL "
            "WHERE c.id = ANY(%s) GROUP BY c.order_id",
            [ids],
        )
        assert dict(cursor.fetchall()) == {f"B-{n}": 1 for n in range(1, 6)}  # one pipeline row each
        cursor.execute(
            "SELECT r.conversion_id, r.side, count(*) FROM rewards_reward r "
            "WHERE r.conversion_id = ANY(%s) GROUP BY r.conversion_id, r.side",
            [ids],
        )
        assert sorted(cursor.fetchall()) == sorted((pk, "referrer", 1) for pk in ids)  # each order paid once
        cursor.execute(
            "SELECT key, count(*) FROM rewards_notification WHERE key = ANY(%s) GROUP BY key",
            [[f"conversion:{pk}" for pk in ids]],
        )
        assert dict(cursor.fetchall()) == {f"conversion:{pk}": 1 for pk in ids}  # one email each
    conn.close()
    # The killed tasks were delivered again (nobody sent them twice): their ids reached the second worker.
    wait_for(
        lambda: all(
            f"rewards.process_conversion[{t}] received" in stack.processes["worker-2"].output() for t in killed
        ),
        timeout=60,
        what="the killed tasks to be delivered again",
    )


def test_a_redis_that_hangs_never_hangs_an_order_or_a_click_and_both_are_stored(stacks):
    healthy = stacks("procfile", name="hang-ok", worker=False, beat=False)
    shop = healthy.createmerchant()
    anna = (
        healthy.api(shop.live_key)
        .post("/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"})
        .json()
    )
    hanging = HangingRedis()
    try:
        # The same code and database, but REDIS_URL points at a Redis that accepts and never answers.
        hung = stacks("procfile", name="hang", env={"REDIS_URL": hanging.url}, worker=False, beat=False)
        api = hung.api(shop.live_key)
        for n in range(3):
            # A client's timeout is the bound: the request must answer well within it (the cache and the broker
            # give up after their socket timeouts, and then are not asked again for a few seconds).
            order = api.post(
                "/api/v1/conversions",
                json={"order_id": f"H-{n}", "amount": "80.00", "currency": "PLN", "code": anna["code"],
                      "customer": {"external_id": f"h-{n}", "email": f"h-{n}@example.pl"}},
                timeout=25,
            )  # fmt: skip
            assert order.status_code == 201, order.text
            assert order.json()["attributed"] is True
        assert hanging.accepted, "the server did try the hanging Redis"
        link = requests.get(anna["link"].replace(healthy.base_url, hung.base_url), allow_redirects=False, timeout=25)
        assert link.status_code == 302  # the link still leads to the shop, with the code and the click's id
        query = parse_qs(urlsplit(link.headers["Location"]).query)
        assert query["ref"] == [anna["code"]]

        def stored_clicks() -> int:
            with psycopg2.connect(hung.env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM tracking_click WHERE click_id = %s", [query["rs_click"][0]])
                found = cursor.fetchone()[0]
            conn.close()
            return found

        # The click Redis never answered for went to PostgreSQL (after the redirect was sent, once the socket
        # timeout passed): counted, and its id names it.
        assert wait_for(stored_clicks, timeout=20, what="the click to reach PostgreSQL") == 1
        assert hung.server_errors() == []
    finally:
        hanging.close()

    # Stored: the healthy server, on the same database, reads every one of them.
    stored = healthy.api(shop.live_key)
    for n in range(3):
        assert stored.get(f"/api/v1/conversions/H-{n}").json()["attributed"] is True


def test_postgres_restarted_under_load_answers_503_then_serves_again_without_restarting_us(stacks):
    # Not under pytest's temporary root: another pytest session starting meanwhile makes that root 0700 again, and
    # the unprivileged user pgserver runs PostgreSQL as could no longer reach its data to stop it.
    postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="rs-pg-restart-")))
    try:
        url = postgres.create_database("referral_saas")
        stack = stacks("procfile", name="pg-restart", database=url, migrate=True)
        shop = stack.createmerchant()
        api = stack.api(shop.live_key)
        anna = api.post(
            "/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"}
        ).json()

        answers: list[tuple[str, int, dict, str]] = []  # (order id, status, JSON body, Retry-After)
        stop = threading.Event()

        def shop_checkout(worker: int) -> None:
            session, n = requests.Session(), 0
            session.headers["Authorization"] = f"Bearer {shop.live_key}"
            while not stop.is_set():
                n += 1
                order_id = f"P-{worker}-{n}"
                response = session.post(
                    f"{stack.base_url}/api/v1/conversions",
                    json={"order_id": order_id, "amount": "40.00", "currency": "PLN", "code": anna["code"],
                          "customer": {"external_id": f"c-{order_id}", "email": f"c-{order_id}@example.pl"}},
                    timeout=30,
                )  # fmt: skip
                answers.append((order_id, response.status_code, response.json(), response.headers.get("Retry-After")))

        threads = [threading.Thread(target=shop_checkout, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: sum(1 for a in answers if a[1] == 201) >= 20, what="orders before the restart")
            postgres.stop()
            down_from = len(answers)
            wait_for(lambda: sum(1 for a in answers[down_from:] if a[1] == 503) >= 20, what="503s while it is down")
            ready = requests.get(f"{stack.base_url}/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["checks"]["postgres"]["status"] == "error"
            postgres.start()
            up_from = len(answers)
            wait_for(lambda: sum(1 for a in answers[up_from:] if a[1] == 201) >= 20, what="orders after the restart")
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        assert not any(thread.is_alive() for thread in threads)

        statuses = Counter(status for _, status, _, _ in answers)
        assert set(statuses) == {201, 503}, statuses  # never a 500, never a dropped connection
        for _order_id, status, body, retry_after in answers:
            if status == 503:
                assert body["error"]["code"] == "service_unavailable"
                assert retry_after
        assert requests.get(f"{stack.base_url}/readyz", timeout=30).status_code == 200

        # The shop retries what got a 503 (same order id): every order then exists exactly once.
        for order_id, status, _body, _retry in answers:
            if status == 503:
                retried = api.post(
                    "/api/v1/conversions",
                    json={"order_id": order_id, "amount": "40.00", "currency": "PLN", "code": anna["code"],
                          "customer": {"external_id": f"c-{order_id}", "email": f"c-{order_id}@example.pl"}},
                )  # fmt: skip
                assert retried.status_code in (200, 201), retried.text
        listed, page = [], "/api/v1/conversions?limit=200"
        while page:
            body = api.get(page).json()
            listed += [c["order_id"] for c in body["results"]]
            page = body["next"]
        assert sorted(listed) == sorted(order_id for order_id, *_ in answers)

        # The worker reconnected by itself: it scores a new friend's order (so many orders of one referrer in an
        # hour may well be held for review by the velocity check: scored is what counts here).
        after = api.post(
            "/api/v1/conversions",
            json={"order_id": "AFTER-1", "amount": "90.00", "currency": "PLN", "code": anna["code"],
                  "customer": {"external_id": "after", "email": "after@example.pl"}},
        )  # fmt: skip
        assert after.status_code == 201, after.text

        wait_for(
            lambda: api.get("/api/v1/conversions/AFTER-1").json()["fraud"] is not None,
            timeout=120,
            what="the worker to score an order placed after the restart",
        )
        assert all(p.alive for p in stack.processes.values())
    finally:
        postgres.destroy()


def test_a_poison_entry_in_the_click_stream_is_dead_lettered_and_every_other_click_ingested(stack):
    shop = stack.createmerchant()
    api = stack.api(shop.live_key)
    anna = api.post(
        "/api/v1/participants", json={"program": shop.program, "external_id": "anna", "email": "anna@example.pl"}
    ).json()
    broker = redis.Redis.from_url(settings.REDIS_URL)
    stream, dead = f"{stack.namespace}:clicks", f"{stack.namespace}:clicks:dead"
    dead_before = broker.xlen(dead)

    click_ids = []

    def click(query: str = "") -> None:
        response = requests.get(f"{anna['link']}{query}", allow_redirects=False, timeout=30,
                                headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"})  # fmt: skip
        assert response.status_code == 302
        click_ids.append(parse_qs(urlsplit(response.headers["Location"]).query)["rs_click"][0])

    click()
    click("?utm_source=%00evil&utm_campaign=a%01b")  # cleaned at the door
    poison = {"click_id": "not-a-uuid", "merchant_id": "x", "code_id": "\x00", "ts": "nan"}
    broker.xadd(stream, {"d": json.dumps(poison)})
    broker.xadd(stream, {"d": b"{not json"})
    click()

    wait_for(lambda: broker.xlen(stream) == 0, timeout=60, what="beat's ingest to drain the stream")
    with psycopg2.connect(stack.env["DATABASE_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT click_id::text, utm_source, utm_campaign FROM tracking_click WHERE click_id = ANY(%s::uuid[])",
            [click_ids],
        )
        stored = {row[0].replace("-", ""): row[1:] for row in cursor.fetchall()}
    conn.close()
    assert set(stored) == set(click_ids)  # every good click, around the poison
    assert stored[click_ids[1]] == ("evil", "ab")
    dead_letters = broker.xrevrange(dead, count=10)
    assert broker.xlen(dead) - dead_before == 2
    assert all(fields[b"reason"] for _id, fields in dead_letters[:2])
