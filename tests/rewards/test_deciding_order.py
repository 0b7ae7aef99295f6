"""Orders decided in another order than they happened, and friends of one referrer decided at the same time:
the first purchase is the one that happened first, and a milestone is paid exactly once."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from rewards.models import Kind, Reward, RewardRule, Side, Work
from rewards.services import rewards_sweep
from tests.factories import join
from tests.processes import celery_worker
from tests.rewards.helpers import order, process, rule
from tests.threads import run_together

T1 = "2026-11-20T10:00:00Z"
T2 = "2026-11-20T10:05:00Z"


def _wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def one_at_a_time(settings):
    """The per-order path: a message decides its own order only (REWARDS_BATCH_SIZE=1), so a test can decide orders
    in any sequence it likes."""
    settings.REWARDS_BATCH_SIZE = 1


@pytest.fixture
def repeat_orders(program):
    program.new_customers_only = False  # the friend's second order is attributed too
    program.save()
    return program


def _first_purchase_rules(program):
    first = rule(program)  # referrer: 10% of the friend's first purchase
    each = rule(
        program,
        side=Side.REFEREE,
        trigger=RewardRule.Trigger.EACH_PURCHASE,
        max_purchases=1,
        kind=Kind.POINTS,
        value=Decimal("1"),
    )
    return first, each


def _rewards(tenant, rule):
    return list(Reward.objects.for_merchant(tenant.merchant).filter(rule=rule).order_by("pk"))


# --- the first purchase is the one that happened first -----------------------------------------------------------


@pytest.mark.django_db
def test_the_later_order_decided_first_does_not_take_the_first_purchase_reward(
    tenant, repeat_orders, referrer, one_at_a_time
):
    first, each = _first_purchase_rules(repeat_orders)
    earlier = order(tenant, referrer[1], order_id="A", amount="100.00", occurred_at=T1)
    later = order(tenant, referrer[1], order_id="B", amount="300.00", occurred_at=T2)
    assert process(tenant, later["id"]) == "approved"
    assert _rewards(tenant, first) == []  # the earlier order is known and not decided yet: it is the first
    assert _rewards(tenant, each) == []  # purchase 2 of "each purchase up to 1"
    assert process(tenant, earlier["id"]) == "approved"
    [reward] = _rewards(tenant, first)
    assert (reward.conversion_id, reward.value, reward.purchase) == (earlier["id"], Decimal("10.00"), 1)
    [points] = _rewards(tenant, each)
    assert (points.conversion_id, points.value, points.purchase) == (earlier["id"], Decimal("1"), 1)


@pytest.mark.django_db
def test_each_purchase_is_numbered_by_when_it_happened_whatever_the_deciding_order(
    tenant, repeat_orders, referrer, one_at_a_time
):
    each = rule(repeat_orders, trigger=RewardRule.Trigger.EACH_PURCHASE, max_purchases=2)
    at = ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"]
    placed = [
        order(tenant, referrer[1], order_id=f"o-{n}", amount=f"{n}00.00", occurred_at=at[n - 1]) for n in (1, 2, 3)
    ]
    for conversion in reversed(placed):
        assert process(tenant, conversion["id"]) == "approved"
    paid = {r.conversion_id: (r.purchase, r.value) for r in _rewards(tenant, each)}
    assert paid == {placed[0]["id"]: (1, Decimal("10.00")), placed[1]["id"]: (2, Decimal("20.00"))}


@pytest.mark.django_db
def test_a_batch_that_starts_from_the_later_order_pays_the_first_purchase_on_the_earlier_one(
    tenant, repeat_orders, referrer
):
    first, each = _first_purchase_rules(repeat_orders)
    earlier = order(tenant, referrer[1], order_id="A", amount="100.00", occurred_at=T1)
    later = order(tenant, referrer[1], order_id="B", amount="300.00", occurred_at=T2)
    assert process(tenant, later["id"]) == "approved+1"  # the later order's message decided the earlier one too
    [reward] = _rewards(tenant, first)
    assert (reward.conversion_id, reward.value, reward.purchase) == (earlier["id"], Decimal("10.00"), 1)
    [points] = _rewards(tenant, each)
    assert (points.conversion_id, points.purchase) == (earlier["id"], 1)
    assert process(tenant, earlier["id"]) != "approved"  # decided before: nothing twice
    assert len(_rewards(tenant, first)) == 1


@pytest.mark.django_db
def test_an_order_reported_after_a_later_one_was_paid_gets_no_second_first_purchase_reward(
    tenant, repeat_orders, referrer
):
    """The shop reported the earlier order late: the later one was the first known purchase when it was decided and
    keeps the reward; the first purchase is paid once."""
    first = rule(repeat_orders)
    each = rule(repeat_orders, trigger=RewardRule.Trigger.EACH_PURCHASE, max_purchases=2, kind=Kind.POINTS)
    later = order(tenant, referrer[1], order_id="B", amount="300.00", occurred_at=T2)
    process(tenant, later["id"])
    earlier = order(tenant, referrer[1], order_id="A", amount="100.00", occurred_at=T1)
    process(tenant, earlier["id"])
    [reward] = _rewards(tenant, first)
    assert (reward.conversion_id, reward.value) == (later["id"], Decimal("30.00"))
    # "Each purchase up to 2": both are paid once, the late one in the place left free.
    paid = {r.conversion_id: r.purchase for r in _rewards(tenant, each)}
    assert paid == {later["id"]: 1, earlier["id"]: 2}


@pytest.mark.django_db(transaction=True)
def test_a_backlog_decided_by_a_real_worker_pays_the_first_purchase_on_the_order_that_happened_first(
    tenant, repeat_orders, referrer, empty_rewards_queue
):
    first, each = _first_purchase_rules(repeat_orders)
    # Reported while no worker runs, the later order first: the worker decides it first.
    later = order(tenant, referrer[1], order_id="B", amount="300.00", occurred_at=T2)
    earlier = order(tenant, referrer[1], order_id="A", amount="100.00", occurred_at=T1)
    done = Work.objects.for_merchant(tenant.merchant).filter(stage="done", conversion__isnull=False)
    with celery_worker(queues=["rewards"], concurrency=1):
        _wait_for(lambda: done.count() == 2, what="both orders to be decided")
    assert done.get(conversion_id=later["id"]).pk < done.get(conversion_id=earlier["id"]).pk  # decided B, then A
    [reward] = _rewards(tenant, first)
    assert (reward.conversion_id, reward.value) == (earlier["id"], Decimal("10.00"))
    [points] = _rewards(tenant, each)
    assert points.conversion_id == earlier["id"]


# --- milestones: friends of one referrer decided at the same time --------------------------------------------------


def _milestone_rule(program, milestone):
    return rule(
        program,
        trigger=RewardRule.Trigger.MILESTONE,
        milestone=milestone,
        value_type=RewardRule.ValueType.FIXED,
        value=Decimal("50.00"),
    )


def _referrers(program, count):
    return [join(program, email=f"referrer{n}@example.org", external_id=f"r-{n}", name=f"R {n}") for n in range(count)]


def _own_client(tenant):
    from types import SimpleNamespace

    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
    return SimpleNamespace(api=api)


def _milestones_by_referrer(tenant, milestone_rule):
    rows = Reward.objects.for_merchant(tenant.merchant).filter(rule=milestone_rule).values_list("participant_id")
    counts: dict[int, int] = {}
    for (participant_id,) in rows:
        counts[participant_id] = counts.get(participant_id, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("friends", [2, 3])
def test_friends_of_one_referrer_decided_at_once_by_a_real_worker_pay_the_milestone_once(
    tenant, program, empty_rewards_queue, friends
):
    """A backlog of orders, each referrer's friends next to each other in the queue, decided by two worker
    processes at once: each referrer reaches the milestone and gets it exactly once."""
    milestone = _milestone_rule(program, friends)
    rule(program, side=Side.REFEREE)  # the friends' own rewards: more work inside each decision
    referrers = _referrers(program, 20)
    for n, (_participant, code) in enumerate(referrers):
        for f in range(friends):
            order(tenant, code, order_id=f"o-{n}-{f}", friend=f"friend{n}-{f}@example.org")
    done = Work.objects.for_merchant(tenant.merchant).filter(stage="done", decision="approve")
    with celery_worker(queues=["rewards"], concurrency=2) as worker:
        _wait_for(lambda: done.count() == 20 * friends, what="every order to be decided")
        output = "".join(worker.output_lines)
    assert "deadlock" not in output.lower()
    assert _milestones_by_referrer(tenant, milestone) == {participant.pk: 1 for participant, _code in referrers}


@pytest.mark.django_db(transaction=True)
def test_friends_ordering_in_the_same_instant_through_the_api_pay_the_milestone_once(
    tenant, program, empty_rewards_queue
):
    """Orders posted by real threads at the same instant while the worker runs."""
    milestone = _milestone_rule(program, 2)
    referrers = _referrers(program, 20)
    done = Work.objects.for_merchant(tenant.merchant).filter(stage="done", decision="approve")
    with celery_worker(queues=["rewards"], concurrency=2):
        for n, (_participant, code) in enumerate(referrers):

            def post(f, n=n, code=code):
                shop = _own_client(tenant)  # a client per thread: APIClient is not shared between threads
                return order(shop, code, order_id=f"o-{n}-{f}", friend=f"friend{n}-{f}@example.org")

            _results, errors = run_together(2, post)
            assert errors == []
        _wait_for(lambda: done.count() == 40, what="every order to be decided")
    assert _milestones_by_referrer(tenant, milestone) == {participant.pk: 1 for participant, _code in referrers}


@pytest.mark.django_db
def test_the_sweeper_pays_a_milestone_that_was_lost(tenant, program, referrer):
    """A milestone reached without its reward (lost before this was fixed): the sweeper finds the referrer and the
    check it sends pays it, once."""
    from django.utils import timezone

    from rewards.tasks import check_milestones

    milestone = _milestone_rule(program, 2)
    for f in range(2):
        process(tenant, order(tenant, referrer[1], order_id=f"o-{f}", friend=f"friend{f}@example.org")["id"])
    Reward.objects.for_merchant(tenant.merchant).filter(rule=milestone).delete()  # as if lost
    sent = []
    later = timezone.now() + timezone.timedelta(minutes=2)
    counts = rewards_sweep(now=later, send=lambda name, **kwargs: sent.append((name, kwargs)))
    assert counts["milestones"] == 1
    checks = [kwargs for name, kwargs in sent if name == "rewards.check_milestones"]
    assert checks == [{"merchant_id": tenant.merchant.pk, "program_id": program.pk, "referrer_id": referrer[0].pk}]
    assert check_milestones(**checks[0]) == 1
    assert check_milestones(**checks[0]) == 0
    assert _milestones_by_referrer(tenant, milestone) == {referrer[0].pk: 1}
    assert rewards_sweep(now=later, send=lambda name, **kwargs: None)["milestones"] == 0


@pytest.mark.django_db
def test_the_sweeper_leaves_referrers_below_the_milestone_or_paid_alone(tenant, program, referrer):
    from django.utils import timezone

    _milestone_rule(program, 2)
    _milestone_rule(program, 5)
    process(tenant, order(tenant, referrer[1], order_id="o-0", friend="friend0@example.org")["id"])
    later = timezone.now() + timezone.timedelta(minutes=2)
    assert rewards_sweep(now=later, send=lambda name, **kwargs: None)["milestones"] == 0
    process(tenant, order(tenant, referrer[1], order_id="o-1", friend="friend1@example.org")["id"])
    assert rewards_sweep(now=later, send=lambda name, **kwargs: None)["milestones"] == 0  # 2 paid, 5 not reached
