"""Rollups equal a brute-force recount of the raw tables, run after run: late events, refunds, reward changes and
fraud decisions included; a second run changes nothing; days are the merchant's."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import DailyStats, RollupState, ShopDailyStats
from analytics.services import rollup_backfill, rollup_incremental
from rewards.models import RewardEvent
from tests.analytics.helpers import (
    World,
    assert_rollups_match,
    brute_referrer_totals,
    fraud_model,
    referrer_totals,
)
from tests.factories import ProgramFactory, join
from tracking.models import Click, Conversion, Referral

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_brute_force_recount_after_every_incremental_run(tenant, merchant, seed):
    world = World(merchant, seed=seed)
    world.people(14)
    world.people(3, livemode=False)
    world.events(160)
    world.assess()
    rollup_incremental()
    assert_rollups_match(merchant)
    assert referrer_totals(merchant) == brute_referrer_totals(merchant)

    # Fraud rejects that change orders other than the one scored (and a human who reinstates one).
    assert len(world.cascade_rejects(reviewer=tenant.owner)) == 4
    rollup_incremental()
    assert_rollups_match(merchant)
    assert referrer_totals(merchant) == brute_referrer_totals(merchant)

    # Late and changed things: clicks and shares that happened days ago, new people, refunds of old orders,
    # rewards that moved on, a test-mode order, more fraud decisions.
    world.people(3)
    world.events(60)
    world.order(world.when(), livemode=False)
    for conversion in world.rng.sample(world.conversions, k=min(5, len(world.conversions))):
        world.refund(conversion, (conversion.amount - conversion.refunded_amount) / 2)
    for reward in world.rewards[:4]:
        reward.status = "rejected"
        reward.save(update_fields=["status"])
        RewardEvent.all_merchants.create(merchant=merchant, reward=reward, to_status="rejected", actor="test")
    for reward in [w for w in world.rewards[4:] if w.unit == "money"][:3]:
        world.take_back(reward)  # used coupons partly taken back: the cost drops, the clawed-back column grows
    world.assess()
    rollup_incremental()
    assert_rollups_match(merchant)
    assert referrer_totals(merchant) == brute_referrer_totals(merchant)


def test_a_second_run_changes_nothing(merchant):
    world = World(merchant, seed=7)
    world.people(8)
    world.events(80)
    first = rollup_incremental()
    assert first.keys > 0
    stamps = dict(DailyStats.objects.for_merchant(merchant).values_list("pk", "updated_at"))
    shop = dict(ShopDailyStats.objects.for_merchant(merchant).values_list("pk", "updated_at"))

    again = rollup_incremental()

    assert dict(DailyStats.objects.for_merchant(merchant).values_list("pk", "updated_at")) == stamps
    assert dict(ShopDailyStats.objects.for_merchant(merchant).values_list("pk", "updated_at")) == shop
    assert again.keys <= first.keys  # only the lookback is read again, and nothing in it changed
    assert_rollups_match(merchant)


def test_a_run_recounts_only_the_days_that_changed(merchant):
    world = World(merchant, seed=11)
    world.people(6)
    world.events(60)
    rollup_incremental()
    untouched = {
        (s.program_id, s.variant_id, s.day): s.updated_at
        for s in DailyStats.objects.for_merchant(merchant)
        if s.day != date(2026, 3, 21)
    }

    code = world.codes[0]
    late = datetime(2026, 3, 21, 10, 0, tzinfo=zoneinfo.ZoneInfo("UTC"))
    Click.all_merchants.create(
        merchant=merchant, occurred_at=late, program=code.program, code=code, participant=code.participant
    )
    result = rollup_incremental()

    assert result.keys <= 3  # that program's day (and nothing else of the first run is new)
    after = {
        (s.program_id, s.variant_id, s.day): s.updated_at
        for s in DailyStats.objects.for_merchant(merchant)
        if s.day != date(2026, 3, 21)
    }
    assert after == untouched
    assert_rollups_match(merchant)


def test_a_refund_of_an_old_order_lowers_that_days_revenue(merchant):
    world = World(merchant, seed=5)
    world.people(4)
    referral = world.referral(world.codes[0], world.when())
    order_day = datetime(2026, 3, 10, 12, tzinfo=zoneinfo.ZoneInfo("UTC"))
    world.referrals = [referral]
    world.rng.seed(0)
    conversion = None
    while conversion is None or conversion.status != "attributed":
        conversion = world.order(order_day)
    rollup_incremental()
    day = DailyStats.objects.for_merchant(merchant).get(program=conversion.program, day=date(2026, 3, 10))
    assert day.referred_revenue == conversion.amount

    world.refund(conversion, Decimal("1.10"))
    rollup_incremental()

    day.refresh_from_db()
    assert day.referred_revenue == conversion.amount - Decimal("1.10")
    assert day.referred_refunds == Decimal("1.10")
    assert day.referred_revenue_gross == conversion.amount
    assert_rollups_match(merchant)


def test_days_are_the_merchants_calendar_days(merchant):
    merchant.timezone = "America/New_York"
    merchant.save()
    program = ProgramFactory(merchant=merchant)
    _participant, code = join(program, email="tz@people.example")
    # 03:30 UTC on 2 March is still 1 March in New York (UTC-5).
    at = datetime(2026, 3, 2, 3, 30, tzinfo=zoneinfo.ZoneInfo("UTC"))
    Click.all_merchants.create(
        merchant=merchant, occurred_at=at, program=program, code=code, participant=code.participant
    )
    Click.all_merchants.create(
        merchant=merchant, occurred_at=at + timedelta(hours=2), program=program, code=code, participant=code.participant
    )
    rollup_incremental()
    days = dict(DailyStats.objects.for_merchant(merchant).filter(clicks__gt=0).values_list("day", "clicks"))
    assert days == {date(2026, 3, 1): 1, date(2026, 3, 2): 1}


def test_a_click_ingested_late_is_counted_on_the_day_it_happened(merchant):
    program = ProgramFactory(merchant=merchant)
    _participant, code = join(program, email="late@people.example")
    rollup_incremental()
    occurred = timezone.now() - timedelta(days=3)
    Click.all_merchants.create(
        merchant=merchant, occurred_at=occurred, program=program, code=code, participant=code.participant
    )
    rollup_incremental()
    local_day = occurred.astimezone(zoneinfo.ZoneInfo(merchant.timezone)).date()
    assert DailyStats.objects.for_merchant(merchant).get(program=program, day=local_day).clicks == 1


def test_rows_read_again_from_the_lookback_are_not_counted_twice(merchant):
    world = World(merchant, seed=9)
    world.people(5)
    world.events(40)
    for _ in range(3):
        rollup_incremental()
    state = RollupState.objects.for_merchant(merchant).get()
    assert state.last_run_at is not None
    assert state.checkpoints
    assert_rollups_match(merchant)


def test_a_backfill_rebuilds_what_was_lost(merchant):
    world = World(merchant, seed=4)
    world.people(6)
    world.events(80)
    rollup_incremental()
    DailyStats.objects.for_merchant(merchant).filter(day__gte=date(2026, 3, 22)).delete()
    ShopDailyStats.objects.for_merchant(merchant).update(orders=0)
    seen = []

    rollup_backfill(since=date(2026, 3, 1), merchants=[merchant], progress=lambda done, total: seen.append(done))

    assert_rollups_match(merchant)
    assert seen[-1] == len(seen)


def test_fraud_decisions_are_counted_when_the_fraud_app_is_there(merchant):
    model = fraud_model()
    if model is None:
        pytest.skip("the fraud app's tables are not migrated in this checkout")
    world = World(merchant, seed=21)
    world.people(5)
    world.events(80)
    world.assess()
    rollup_incremental()
    assert_rollups_match(merchant)
    assessment = model.all_merchants.filter(merchant=merchant).exclude(decision="reject").first()
    if assessment is None:
        pytest.skip("the seed made no assessment to review")
    assessment.decision = "reject"
    assessment.save(update_fields=["decision"])
    apps_review = type(assessment).events.rel.related_model
    apps_review.all_merchants.create(
        merchant=merchant, assessment=assessment, action="reject", previous_decision="approve", reason="test"
    )
    rollup_incremental()
    assert_rollups_match(merchant)


def test_a_repeat_order_updates_the_customers_first_day_without_recounting_it(merchant):
    world = World(merchant, seed=41)
    world.people(4)
    code = world.codes[0]
    first_day = datetime(2026, 2, 3, 12, tzinfo=zoneinfo.ZoneInfo("UTC"))
    referral = world.referral(code, first_day - timedelta(hours=2))
    world.referrals = [referral]
    first = Conversion.all_merchants.create(
        merchant=merchant, order_id="first", amount=Decimal("100.00"), currency="PLN", customer_external_id="vip",
        status="attributed", program=code.program, referral=referral, is_new_customer=True, occurred_at=first_day,
    )  # fmt: skip
    rollup_incremental()
    cohort = DailyStats.objects.for_merchant(merchant).get(
        program=code.program, variant=referral.variant, day=date(2026, 2, 3)
    )
    assert (cohort.cohort_customers, cohort.cohort_repeaters, cohort.cohort_revenue) == (1, 0, Decimal("100.00"))

    Conversion.all_merchants.create(
        merchant=merchant, order_id="again", amount=Decimal("40.50"), currency="PLN", customer_external_id="vip",
        status="unattributed", is_new_customer=False, occurred_at=first_day + timedelta(days=30),
    )  # fmt: skip
    result = rollup_incremental()

    assert result.keys == 0  # no program day had a new event: the order has no program
    cohort.refresh_from_db()
    assert (cohort.cohort_customers, cohort.cohort_repeaters, cohort.cohort_revenue) == (1, 1, Decimal("140.50"))
    assert first.pk
    assert_rollups_match(merchant)


def _referred_order(world, referral, at: datetime, number: int) -> Conversion:
    return Conversion.all_merchants.create(
        merchant=world.merchant, order_id=f"cascade-{number}", amount=Decimal("100.00"), currency="PLN",
        customer_external_id=f"friend-{number}", status="attributed", program=referral.program, referral=referral,
        is_new_customer=True, occurred_at=at,
    )  # fmt: skip


def test_a_fraud_reject_of_a_later_order_takes_the_earlier_orders_off_their_days(merchant):
    from tracking.services import referral_reject

    model = fraud_model()
    utc = zoneinfo.ZoneInfo("UTC")
    world = World(merchant, seed=22)
    world.people(3)
    world.events(40)
    code = world.codes[0]
    referral = world.referral(code, datetime(2026, 3, 1, 10, tzinfo=utc))
    Referral.all_merchants.filter(pk=referral.pk).update(status="converted", rejection_reason="")
    first = _referred_order(world, referral, datetime(2026, 3, 5, 12, tzinfo=utc), 1)
    rollup_incremental()
    march_5 = {"program": code.program, "variant": code.variant, "day": date(2026, 3, 5)}
    assert DailyStats.objects.for_merchant(merchant).get(**march_5).attributed_orders >= 1
    stamps = dict(DailyStats.objects.for_merchant(merchant).values_list("pk", "updated_at"))

    # The friend's second order is scored a reject: the referral and its first order are rejected with it.
    second = _referred_order(world, referral, datetime(2026, 3, 9, 12, tzinfo=utc), 2)
    model.all_merchants.create(
        merchant=merchant, livemode=True, program=code.program, referral=referral, conversion=second, score=100,
        auto_decision="reject", decision="reject", created_at=datetime(2026, 3, 9, 12, 1, tzinfo=utc),
    )  # fmt: skip
    referral_reject(referral=referral, reason="fraud")
    first.refresh_from_db()
    assert first.status == "rejected"
    result = rollup_incremental()

    assert_rollups_match(merchant)
    assert referrer_totals(merchant) == brute_referrer_totals(merchant)
    row = DailyStats.objects.for_merchant(merchant).get(**march_5)
    assert row.rejected_orders >= 1
    assert ShopDailyStats.objects.for_merchant(merchant).get(
        currency="PLN", day=date(2026, 3, 5)
    ).attributed_orders == (
        Conversion.all_merchants.filter(
            merchant=merchant, status="attributed", currency="PLN", occurred_at__date=date(2026, 3, 5)
        ).count()
    )
    # Still only what changed: the referral's day and its two orders' days, read by the referral's index.
    assert result.keys == 3
    others = {
        pk: at
        for pk, at in DailyStats.objects.for_merchant(merchant)
        .exclude(day__in=[date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 9)])
        .values_list("pk", "updated_at")
    }
    assert others == {pk: stamps[pk] for pk in others}


def test_a_rejected_sign_up_takes_the_friends_orders_off_their_days(merchant):
    from tracking.services import referral_reject

    model = fraud_model()
    utc = zoneinfo.ZoneInfo("UTC")
    world = World(merchant, seed=23)
    world.people(2)
    code = world.codes[0]
    referral = world.referral(code, datetime(2026, 3, 1, 10, tzinfo=utc))
    Referral.all_merchants.filter(pk=referral.pk).update(status="converted", rejection_reason="")
    _referred_order(world, referral, datetime(2026, 3, 4, 12, tzinfo=utc), 3)
    rollup_incremental()

    model.all_merchants.create(
        merchant=merchant, livemode=True, program=code.program, referral=referral, conversion=None, score=100,
        auto_decision="reject", decision="reject",
    )  # fmt: skip
    referral_reject(referral=referral, reason="fraud")
    rollup_incremental()

    assert_rollups_match(merchant)
    assert referrer_totals(merchant) == brute_referrer_totals(merchant)
    day = DailyStats.objects.for_merchant(merchant).get(program=code.program, day=date(2026, 3, 4))
    assert (day.attributed_orders, day.rejected_orders, day.referred_revenue) == (0, 1, Decimal("0"))
