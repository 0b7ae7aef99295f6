"""Faults, with real processes: a worker SIGKILLed mid-transaction, a Redis that hangs, PostgreSQL restarted under
load, a poison entry in the click stream. The system answers cleanly while it hurts and heals without a restart."""

from __future__ import annotations

import re

import psycopg2
import pytest
import redis
from django.conf import settings

from tests.system.stack import Browser, wait_for

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


def test_a_worker_killed_while_it_creates_an_orders_rewards_is_redelivered_by_celery_and_pays_once(stacks):
    # Celery's own redelivery: a message whose worker died goes back to the queue after the visibility timeout.
    # No beat, so no sweeper can be what finishes the work.
    stack = stacks("procfile", name="kill", env={"BROKER_VISIBILITY_TIMEOUT": "10"}, beat=False)
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
            cursor.execute("SELECT count(*) FROM rewards_reward")
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

    # A new worker: Celery restores the unacknowledged message after the visibility timeout and runs it again.
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

    broker = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"{stack.namespace}:celery:"
    wait_for(lambda: broker.hlen(f"{prefix}unacked") == 0, what="no message left unacknowledged")
    assert broker.zcard(f"{prefix}unacked_index") == 0
