"""Nothing lost, nothing twice: real threads, real worker processes killed with SIGKILL, Redis unreachable."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from rewards.models import CatalogItem, Kind, LedgerEntry, Reward, Work
from rewards.selectors import ledger_balance
from rewards.services import points_redeem, rewards_sweep
from tests.processes import celery_worker
from tests.rewards.conftest import broker_backlog
from tests.rewards.helpers import order, process, rule
from tests.threads import run_together
from tracking.models import Conversion

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_same_conversion_task_delivered_concurrently_yields_one_reward(tenant, program, referrer):
    rule(program)
    rule(program, kind=Kind.POINTS, value=Decimal("10"))
    conversion = order(tenant, referrer[1])
    results, errors = run_together(8, lambda _i: process(tenant, conversion["id"]))
    assert errors == []
    assert sorted(results).count("approved") == 1
    assert set(results) <= {"approved", "done_before"}
    assert Reward.objects.for_merchant(tenant.merchant).count() == 2
    assert Work.objects.for_merchant(tenant.merchant).filter(stage="done").count() == 1


def test_concurrent_catalog_redemptions_never_overdraw(tenant, program, referrer):
    participant = referrer[0]
    rule(program, kind=Kind.POINTS, value_type="fixed", value=Decimal("300"), hold_days=0)
    process(tenant, order(tenant, referrer[1])["id"])
    from rewards.services import rewards_release_due

    rewards_release_due()
    assert ledger_balance(participant=participant) == 300
    item = CatalogItem.objects.for_merchant(tenant.merchant).create(
        program=program, name="10 PLN voucher", points=100, kind=Kind.AMOUNT_COUPON, value=Decimal("10.00")
    )
    results, errors = run_together(8, lambda _i: points_redeem(participant=participant, item_id=item.pk, actor="test"))
    assert len(results) == 3  # 300 points buy three, never more
    assert len(errors) == 5
    assert all(getattr(e, "code", "") == "insufficient_points" for e in errors)
    assert ledger_balance(participant=participant) == 0
    assert {r.status for r in results} == {"issued"}
    assert len({r.coupon_code for r in results}) == 3


def test_a_posted_order_is_processed_by_a_real_worker(tenant, program, referrer, empty_rewards_queue):
    rule(program, hold_days=0)
    with celery_worker(queues=["rewards"]):
        conversion = order(tenant, referrer[1])
        _wait_for(
            lambda: Reward.objects.for_merchant(tenant.merchant).filter(status="issued").exists(),
            what="the reward to be issued by the worker",
        )
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    assert reward.conversion_id == conversion["id"]
    assert reward.coupon_code
    detail = tenant.api.get("/api/v1/conversions/1001").json()
    assert detail["fraud"]["decision"] == "approve"
    assert [r["id"] for r in detail["rewards"]] == [reward.pk]


def _blocked_on_ledger() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%%rewards_ledgerentry%%'"
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_in_the_middle_of_issuing_leaves_exactly_one_reward(
    tenant, program, referrer, empty_rewards_queue
):
    """SIGKILL while the worker is inside the issuing transaction (blocked writing the ledger): the transaction
    dies with it; after a restart the sweep issues the reward, once."""
    import psycopg2

    rule(program, kind=Kind.POINTS, value_type="fixed", value=Decimal("250"), hold_days=0)
    conversion = order(tenant, referrer[1])
    process(tenant, conversion["id"])
    reward = Reward.objects.for_merchant(tenant.merchant).get()
    settings_dict = connection.settings_dict
    blocker = psycopg2.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        password=settings_dict["PASSWORD"] or None,
    )
    try:
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN; LOCK TABLE rewards_ledgerentry IN EXCLUSIVE MODE")
        with celery_worker(queues=["rewards"]) as worker:
            from referral_saas.celery import app

            app.send_task("rewards.release", kwargs={"merchant_id": tenant.merchant.pk, "reward_ids": [reward.pk]})
            _wait_for(_blocked_on_ledger, what="the worker to be inside the issuing transaction")
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        blocker.rollback()
    finally:
        blocker.close()
    reward.refresh_from_db()
    assert reward.status == Reward.Status.PENDING  # the killed transaction left nothing behind
    with celery_worker(queues=["rewards"]):
        rewards_sweep()
        _wait_for(
            lambda: Reward.objects.for_merchant(tenant.merchant).filter(status="issued").exists(),
            what="the restarted worker to issue the reward",
        )
        rewards_sweep()  # a second sweep finds nothing to do
        time.sleep(1)
    assert Reward.objects.for_merchant(tenant.merchant).count() == 1
    entries = LedgerEntry.objects.for_merchant(tenant.merchant).all()
    assert [(e.kind, e.amount) for e in entries] == [("earned", Decimal("250"))]
    assert [e.to_status for e in Reward.objects.for_merchant(tenant.merchant).get().events.all()] == [
        "pending",
        "approved",
        "issued",
    ]


@contextlib.contextmanager
def _redis_unreachable(settings):
    """Every Redis client of this process (cache, rate limits, click buffer, Celery broker) points at a closed port."""
    from referral_saas import redis_client
    from referral_saas.celery import app

    dead = "redis://127.0.0.1:1/0"
    saved = (app.conf.broker_url, settings.CACHES, settings.REDIS_URL)

    def reset_clients():
        redis_client.get_redis.cache_clear()
        app._pool = None  # the producer pool was built for the other broker
        app.amqp._producer_pool = None

    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead}}
    settings.REDIS_URL = dead
    app.conf.broker_url = dead
    reset_clients()
    try:
        yield
    finally:
        app.conf.broker_url, settings.CACHES, settings.REDIS_URL = saved
        reset_clients()


def test_an_order_posted_while_redis_is_down_is_stored_and_the_sweeper_finishes_it(
    tenant, program, referrer, settings, empty_rewards_queue
):
    rule(program, hold_days=0)
    with _redis_unreachable(settings):
        response = tenant.api.post(
            "/api/v1/conversions",
            {
                "order_id": "1001",
                "amount": "129.90",
                "currency": "PLN",
                "customer": {"external_id": "c-77", "email": "friend@example.org"},
                "code": referrer[1].code,
            },
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1001",
        )
        assert response.status_code == 201, response.content
    conversion = Conversion.objects.for_merchant(tenant.merchant).get()
    assert conversion.attributed
    assert not Work.objects.for_merchant(tenant.merchant).exists()  # the processing message never left
    # Redis is back: the beat sweeper finds the unscored order; a worker scores it and issues the reward.
    later = timezone.now() + timezone.timedelta(minutes=2)
    with celery_worker(queues=["rewards"]):
        assert rewards_sweep(now=later)["conversions"] == 1
        _wait_for(
            lambda: Reward.objects.for_merchant(tenant.merchant).filter(status="issued").exists(),
            what="the swept conversion to be processed and its reward issued",
        )
        _wait_for(
            lambda: broker_backlog("rewards") == {"waiting": 0, "unacked": 0},
            what="the worker to take and acknowledge every message the sweep and its tasks queued",
        )
    # Nothing is left behind for a later worker: no message waiting, none taken and never acknowledged.
    assert broker_backlog("rewards") == {"waiting": 0, "unacked": 0}
    assert Reward.objects.for_merchant(tenant.merchant).get().conversion_id == conversion.pk
    assert Work.objects.for_merchant(tenant.merchant).get().stage == "done"
    assert rewards_sweep(now=later)["conversions"] == 0
