"""Regressions from the rewards review: overturned fraud decisions, refunds racing decisions, out-of-order orders,
repeated clawbacks, stalled releases, rule edits, milestones, JPY payouts, odd ids."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from fraud.models import BlocklistEntry, FraudAssessment
from fraud.services import assessment_review
from referral_saas.errors import Conflict, ValidationFailed
from rewards.models import Coupon, CouponPool, Kind, LedgerEntry, Reward, RewardAdjustment, RewardRule, Side, Work
from rewards.services import (
    cash_payout_record,
    referral_process,
    refund_apply,
    reward_redeem,
    rewards_release_due,
    rewards_sweep,
)
from tests.rewards.helpers import order, process, rule
from tracking.models import Refund

pytestmark = pytest.mark.django_db


def _rewards(tenant, **filters):
    return list(Reward.objects.for_merchant(tenant.merchant).filter(**filters).order_by("pk"))


def _refund(tenant, order_id, amount, refund_id):
    response = tenant.api.post(
        f"/api/v1/conversions/{order_id}/refunds", {"amount": amount, "refund_id": refund_id}, format="json"
    )
    assert response.status_code == 201, response.content
    return refund_apply(
        merchant=tenant.merchant, refund_id=Refund.objects.for_merchant(tenant.merchant).get(refund_id=refund_id).pk
    )


def test_an_auto_rejected_order_approved_by_a_person_pays(tenant, program, referrer):
    rule(program)
    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    conversion = order(tenant, referrer[1], friend="friend@cheat.example")
    assert process(tenant, conversion["id"]) == "rejected"
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assessment_review(assessment=assessment, approve=True, reason="Known customer", user=tenant.owner)
    assert process(tenant, conversion["id"]) == "approved"
    [reward] = _rewards(tenant)
    assert reward.status == Reward.Status.PENDING
    assert process(tenant, conversion["id"]) == "done_before"


def test_an_approved_order_rejected_later_by_a_person_never_pays(tenant, program, referrer):
    rule(program, hold_days=0)
    conversion = order(tenant, referrer[1])
    assert process(tenant, conversion["id"]) == "approved"
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assessment_review(assessment=assessment, approve=False, reason="Same card as the referrer", user=tenant.owner)
    # Even if the release runs before the pipeline hears of the review, the reward is not paid.
    assert rewards_release_due() == 0
    [reward] = _rewards(tenant)
    assert reward.status == Reward.Status.REJECTED
    assert process(tenant, conversion["id"]) == "rejected"


def test_a_sweep_resends_a_review_decision_whose_message_was_lost(tenant, program, referrer):
    rule(program)
    conversion = order(tenant, referrer[1])
    process(tenant, conversion["id"])
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assessment_review(assessment=assessment, approve=False, reason="Chargeback", user=tenant.owner)
    sent = []
    rewards_sweep(now=timezone.now() + datetime.timedelta(minutes=2), send=lambda name, **kw: sent.append((name, kw)))
    assert (
        "rewards.process_conversion",
        {"merchant_id": tenant.merchant.pk, "conversion_id": conversion["id"]},
    ) in sent


def test_a_full_refund_before_the_decision_pays_no_fixed_reward(tenant, program, referrer):
    rule(program, value_type=RewardRule.ValueType.FIXED, value=Decimal("10.00"))
    conversion = order(tenant, referrer[1])
    _refund(tenant, "1001", "129.90", "r-1")
    assert process(tenant, conversion["id"]) == "approved"
    assert _rewards(tenant) == []


def test_a_full_refund_voids_pool_coupons_and_free_products(tenant, program, referrer):
    pool = CouponPool.objects.for_merchant(tenant.merchant).create(program=program, name="codes")
    Coupon.objects.for_merchant(tenant.merchant).create(pool=pool, code="P-1")
    rule(program, kind=Kind.POOL_COUPON, pool=pool, value_type="fixed", value=0)
    rule(program, kind=Kind.FREE_PRODUCT, value_type="fixed", value=0, description="Tote bag")
    process(tenant, order(tenant, referrer[1])["id"])
    _refund(tenant, "1001", "60.00", "r-1")  # partial: fixed item rewards are kept
    assert {r.status for r in _rewards(tenant)} == {"pending"}
    _refund(tenant, "1001", "69.90", "r-2")  # now fully refunded
    assert {r.status for r in _rewards(tenant)} == {"voided"}


def test_two_orders_of_one_friend_out_of_order_pay_the_first_purchase_once(tenant, program, referrer):
    program.new_customers_only = False
    program.save()
    rule(program)
    later = order(tenant, referrer[1], order_id="B", occurred_at="2026-11-20T10:05:00Z")
    earlier = order(tenant, referrer[1], order_id="A", occurred_at="2026-11-20T10:00:00Z")
    process(tenant, later["id"])
    process(tenant, earlier["id"])
    assert len(_rewards(tenant)) == 1


def test_points_cannot_be_redeemed_and_repeated_clawbacks_never_exceed_the_reward(tenant, program, referrer):
    rule(program, kind=Kind.POINTS, value=Decimal("10"), hold_days=0)
    rule(program, hold_days=0)  # an amount coupon: 10% of the order
    process(tenant, order(tenant, referrer[1], amount="1000.00")["id"])
    rewards_release_due()
    points, coupon = _rewards(tenant)
    with pytest.raises(Conflict):
        reward_redeem(reward=points, actor="test")
    reward_redeem(reward=coupon, actor="test")
    _refund(tenant, "1001", "500.00", "r-1")
    _refund(tenant, "1001", "250.00", "r-2")
    clawbacks = RewardAdjustment.objects.for_merchant(tenant.merchant).filter(reward=coupon).order_by("pk")
    assert [a.clawback for a in clawbacks] == [Decimal("50.00"), Decimal("25.00")]  # 100 → 50 → 25 kept
    entries = LedgerEntry.objects.for_merchant(tenant.merchant).filter(reward=points).order_by("pk")
    assert [e.amount for e in entries] == [Decimal("100"), Decimal("-50"), Decimal("-25")]


def test_an_empty_pool_does_not_stall_other_releases(tenant, program, referrer):
    pool = CouponPool.objects.for_merchant(tenant.merchant).create(program=program, name="empty")
    pooled = rule(program, kind=Kind.POOL_COUPON, pool=pool, value_type="fixed", value=0, hold_days=0)
    for n in range(3):
        process(tenant, order(tenant, referrer[1], order_id=f"o{n}", friend=f"f{n}@example.org")["id"])
    rewards_release_due()
    assert {r.flag for r in _rewards(tenant)} == {"pool_empty"}
    pooled.active = False
    pooled.save()
    rule(program, hold_days=0)
    process(tenant, order(tenant, referrer[1], order_id="later", friend="late@example.org")["id"])
    assert rewards_release_due(limit=1) == 1  # the flagged ones no longer fill the batch


def test_pro_rating_uses_the_terms_the_reward_was_made_with(tenant, program, referrer):
    the_rule = rule(program)
    process(tenant, order(tenant, referrer[1], amount="100.00")["id"])
    the_rule.value = Decimal("1")
    the_rule.save()
    _refund(tenant, "1001", "10.00", "r-1")
    assert _rewards(tenant)[0].value == Decimal("9.00")


def test_milestones_count_only_friends_whose_order_passed_fraud_review(tenant, program, referrer):
    rule(
        program,
        trigger="milestone",
        milestone=2,
        kind=Kind.FREE_PRODUCT,
        value_type="fixed",
        value=0,
        description="Mug",
    )
    BlocklistEntry.objects.for_merchant(tenant.merchant).create(kind="domain", value="cheat.example")
    process(tenant, order(tenant, referrer[1], order_id="a", friend="ok@example.org")["id"])
    process(tenant, order(tenant, referrer[1], order_id="b", friend="x@cheat.example")["id"])
    assert _rewards(tenant) == []
    process(tenant, order(tenant, referrer[1], order_id="c", friend="ok2@example.org")["id"])
    assert [r.milestone for r in _rewards(tenant)] == [2]


def test_a_friend_who_cannot_join_does_not_cost_the_referrer_their_reward(tenant, program, referrer):
    rule(program)
    rule(program, side=Side.REFEREE, kind=Kind.PERCENT_COUPON, value_type="fixed", value=10)
    conversion = order(tenant, referrer[1])
    program.status = program.Status.ENDED  # the friend cannot join an ended program
    program.save()
    assert process(tenant, conversion["id"]) == "approved"
    assert [r.side for r in _rewards(tenant)] == ["referrer"]


def test_cash_payout_in_yen_accepts_the_amount_due_as_shown(tenant, program, referrer):
    program.currency = "JPY"
    program.save()
    LedgerEntry.objects.for_merchant(tenant.merchant).create(
        program=program, participant=referrer[0], account="cash", kind="earned", amount=Decimal("500"), currency="JPY"
    )
    entry = cash_payout_record(participant=referrer[0], program=program, amount=Decimal("500.00"), user=tenant.owner)
    assert entry.amount == Decimal("-500")
    with pytest.raises(ValidationFailed):
        cash_payout_record(participant=referrer[0], program=program, amount=Decimal("1"), user=tenant.owner)


@pytest.mark.parametrize(
    "path", ["/api/v1/rewards/²", "/api/v1/rewards?participant=²", "/api/v1/participants/²/points"]
)
def test_unicode_digits_in_ids_are_a_4xx_not_a_500(tenant, path):
    assert tenant.api.get(path).status_code in (200, 404)


def test_unicode_digits_in_a_catalog_item_are_a_404(tenant, program, referrer):
    response = tenant.api.post("/api/v1/participants/c-42/points/redeem", {"item": "²"}, format="json")
    assert response.status_code == 404


def test_a_sign_up_rejected_by_a_person_ends_the_welcome_reward(tenant, program, referrer):
    rule(program, side=Side.REFEREE, trigger="signup", kind=Kind.PERCENT_COUPON, value_type="fixed", value=10)
    response = tenant.api.post(
        "/api/v1/referrals",
        {"code": referrer[1].code, "customer": {"external_id": "c-9", "email": "f@example.org"}},
        format="json",
    )
    referral_id = response.json()["id"]
    assert referral_process(merchant=tenant.merchant, referral_id=referral_id) == "approved"
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assessment_review(assessment=assessment, approve=False, reason="Fake account", user=tenant.owner)
    assert referral_process(merchant=tenant.merchant, referral_id=referral_id) == "rejected"
    assert [r.status for r in _rewards(tenant)] == ["rejected"]
    assert Work.objects.for_merchant(tenant.merchant).get().decision == "reject"


def _milestone(program, at: int, hold_days: int = 0):
    return rule(
        program, trigger=RewardRule.Trigger.MILESTONE, milestone=at, kind=Kind.AMOUNT_COUPON,
        value_type=RewardRule.ValueType.FIXED, value=Decimal("50"), hold_days=hold_days,
    )  # fmt: skip


def test_a_friend_refunded_in_full_does_not_count_towards_a_milestone(tenant, program, referrer):
    _milestone(program, at=2)
    first = order(tenant, referrer[1], order_id="a", friend="f1@example.org")
    _refund(tenant, "a", "129.90", "r-a")  # refunded before the worker looked at it
    process(tenant, first["id"])
    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    assert _rewards(tenant, milestone__isnull=False) == []  # one friend kept their purchase, not two

    process(tenant, order(tenant, referrer[1], order_id="c", friend="f3@example.org")["id"])
    [reward] = _rewards(tenant, milestone__isnull=False)
    assert reward.milestone == 2


def test_a_milestone_on_hold_waits_when_a_friend_behind_it_is_rejected_and_pays_when_reached_again(
    tenant, program, referrer
):
    _milestone(program, at=1, hold_days=0)
    conversion = order(tenant, referrer[1], order_id="a", friend="f1@example.org")
    process(tenant, conversion["id"])
    [reward] = _rewards(tenant, milestone=1)
    assert reward.status == Reward.Status.PENDING
    # A reviewer overturns the friend's order before the release runs: the milestone is not reached any more.
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get(conversion_id=conversion["id"])
    assessment_review(assessment=assessment, approve=False, reason="Same card as the referrer", user=tenant.owner)
    process(tenant, conversion["id"])

    assert rewards_release_due() == 0
    reward.refresh_from_db()
    assert (reward.status, reward.coupon_code) == (Reward.Status.PENDING, "")
    assert reward.reason.startswith("Waiting")
    assert reward.hold_until > timezone.now()

    # An honest friend later: the milestone is reached again and its reward (paid once) is released.
    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    assert len(_rewards(tenant, milestone=1)) == 1
    Reward.objects.for_merchant(tenant.merchant).filter(pk=reward.pk).update(hold_until=timezone.now())
    rewards_release_due()
    reward.refresh_from_db()
    assert (reward.status, reward.reason) == (Reward.Status.ISSUED, "")
    assert reward.coupon_code


def test_a_milestone_on_hold_waits_when_a_friend_behind_it_is_refunded(tenant, program, referrer):
    _milestone(program, at=1, hold_days=30)
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    _refund(tenant, "a", "129.90", "r-a")
    # the hold has passed
    Reward.objects.for_merchant(tenant.merchant).filter(milestone=1).update(hold_until=timezone.now())

    rewards_release_due()

    [reward] = _rewards(tenant, milestone=1)
    assert reward.status == Reward.Status.PENDING
    assert reward.reason.startswith("Waiting")


def test_a_person_can_release_a_waiting_milestone_reward_now(tenant, program, referrer):
    from rewards.services import reward_release_early

    _milestone(program, at=1, hold_days=30)
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    _refund(tenant, "a", "129.90", "r-a")
    [reward] = _rewards(tenant, milestone=1)

    assert reward_release_early(reward=reward, actor="user:owner@shop.example") == Reward.Status.ISSUED

    reward.refresh_from_db()
    assert (reward.status, reward.reason) == (Reward.Status.ISSUED, "")
    assert reward.events.order_by("-pk").first().actor == "user:owner@shop.example"


def test_an_order_rejected_since_does_not_count_towards_a_milestone(tenant, program, referrer):
    from rewards.selectors import successful_referrals
    from tracking.models import Conversion

    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    assert successful_referrals(program=program, referrer=referrer[0]) == 1
    # A reviewer rejected the order afterwards (its referral may stay converted through another decision).
    Conversion.objects.for_merchant(tenant.merchant).filter(order_id="a").update(status="rejected")

    assert successful_referrals(program=program, referrer=referrer[0]) == 0


def test_points_or_cash_taken_back_from_the_balance_leave_the_referrers_cap_free(tenant, program, referrer):
    rule(program, kind=Kind.CASH, value_type=RewardRule.ValueType.FIXED, value=Decimal("10"), hold_days=0,
         cap_total=1)  # fmt: skip
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    rewards_release_due()
    _refund(tenant, "a", "129.90", "r-a")  # clawed back from what is due: nothing was paid out
    assert _rewards(tenant)[0].status == Reward.Status.CLAWED_BACK

    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    assert _rewards(tenant)[1].status == Reward.Status.PENDING


def test_a_waiting_milestone_reward_has_one_audit_line_saying_so(tenant, program, referrer):
    _milestone(program, at=1, hold_days=0)
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    _refund(tenant, "a", "129.90", "r-a")
    rewards_release_due()
    Reward.objects.for_merchant(tenant.merchant).filter(milestone=1).update(hold_until=timezone.now())
    rewards_release_due()  # the next day: still waiting, no second line

    [reward] = _rewards(tenant, milestone=1)
    notes = [e.reason for e in reward.events.order_by("pk") if e.reason.startswith("Waiting")]
    assert len(notes) == 1


def test_a_catalog_item_from_an_empty_pool_tells_the_owners_and_spends_nothing(tenant, program, referrer):
    from rewards.models import CatalogItem, Notification
    from rewards.services import points_redeem

    pool = CouponPool.objects.for_merchant(tenant.merchant).create(program=program, name="Empty")
    item = CatalogItem.objects.for_merchant(tenant.merchant).create(
        program=program, name="Voucher", points=100, kind=Kind.POOL_COUPON, pool=pool
    )
    LedgerEntry.objects.for_merchant(tenant.merchant).create(
        program=program, participant=referrer[0], account="points", kind="earned", amount=100
    )
    with pytest.raises(Conflict):
        points_redeem(participant=referrer[0], item_id=item.pk, actor="test")

    assert Notification.objects.for_merchant(tenant.merchant).filter(kind="pool_empty").count() == 1
    assert not Reward.objects.for_merchant(tenant.merchant).exists()
    assert LedgerEntry.objects.for_merchant(tenant.merchant).count() == 1  # the points earned, none spent
