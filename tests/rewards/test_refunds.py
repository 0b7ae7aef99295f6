"""Refunds take back what they paid for: void, pro-rate, claw back; never twice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rewards.models import Kind, LedgerEntry, Reward, RewardAdjustment, RewardRule
from rewards.selectors import budget_spent, ledger_balance, rule_value
from rewards.services import (
    refund_apply,
    reward_redeem,
    rewards_release_due,
)
from tests.rewards.helpers import order, process, rule
from tracking.models import Refund

pytestmark = pytest.mark.django_db


def _refund(tenant, order_id, amount, refund_id):
    response = tenant.api.post(
        f"/api/v1/conversions/{order_id}/refunds", {"amount": amount, "refund_id": refund_id}, format="json"
    )
    assert response.status_code in (200, 201), response.content
    refund = Refund.objects.for_merchant(tenant.merchant).get(refund_id=refund_id)
    return refund_apply(merchant=tenant.merchant, refund_id=refund.pk)


def _reward(tenant):
    return Reward.objects.for_merchant(tenant.merchant).get()


def test_full_refund_voids_a_pending_reward(tenant, program, referrer):
    rule(program)
    process(tenant, order(tenant, referrer[1])["id"])
    assert _refund(tenant, "1001", "129.90", "r-1") == 1
    reward = _reward(tenant)
    assert reward.status == Reward.Status.VOIDED
    assert "r-1" in reward.reason


def test_full_refund_voids_an_issued_unused_coupon_and_tells_the_shop(tenant, program, referrer):
    rule(program, hold_days=0)
    process(tenant, order(tenant, referrer[1])["id"])
    rewards_release_due()
    assert _reward(tenant).status == Reward.Status.ISSUED
    _refund(tenant, "1001", "129.90", "r-1")
    reward = _reward(tenant)
    assert reward.status == Reward.Status.VOIDED
    assert reward.coupon_code  # the record of the coupon stays
    from referral_saas.webhooks.models import WebhookMessage

    # No endpoint is configured here, so no message is stored; the event name is checked in the webhooks tests.
    assert WebhookMessage.objects.for_merchant(tenant.merchant).count() == 0


def test_full_refund_after_the_coupon_was_used_claws_back_and_keeps_the_record(tenant, program, referrer):
    rule(program, hold_days=0)
    process(tenant, order(tenant, referrer[1])["id"])
    rewards_release_due()
    reward_redeem(reward=_reward(tenant), actor="test")
    _refund(tenant, "1001", "129.90", "r-1")
    reward = _reward(tenant)
    assert reward.status == Reward.Status.CLAWED_BACK
    assert reward.value == Decimal("12.99")  # the original record untouched
    adjustment = RewardAdjustment.objects.for_merchant(tenant.merchant).get()
    assert (adjustment.action, adjustment.clawback) == ("clawed_back", Decimal("12.99"))


def test_refund_of_spent_points_is_a_negative_ledger_entry(tenant, program, referrer):
    rule(program, kind=Kind.POINTS, value=Decimal("100"), hold_days=0)  # 100% of the order in points
    process(tenant, order(tenant, referrer[1], amount="80.00")["id"])
    rewards_release_due()
    assert ledger_balance(participant=referrer[0]) == 80
    _refund(tenant, "1001", "80.00", "r-1")
    assert ledger_balance(participant=referrer[0]) == 0
    entries = LedgerEntry.objects.for_merchant(tenant.merchant).order_by("pk")
    assert [(e.kind, e.amount) for e in entries] == [("earned", Decimal("80")), ("clawback", Decimal("-80"))]
    assert _reward(tenant).status == Reward.Status.CLAWED_BACK


def test_partial_refund_pro_rates_a_percentage_reward_to_the_kept_amount(tenant, program, referrer):
    rule(program)
    process(tenant, order(tenant, referrer[1], amount="200.00")["id"])
    assert _reward(tenant).value == Decimal("20.00")
    _refund(tenant, "1001", "50.00", "r-1")
    reward = _reward(tenant)
    assert (reward.status, reward.value, reward.original_value) == ("pending", Decimal("15.00"), Decimal("20.00"))
    _refund(tenant, "1001", "25.00", "r-2")
    assert _reward(tenant).value == Decimal("12.50")


def test_partial_refund_keeps_a_fixed_reward_unless_below_the_minimum_order(tenant, program, referrer):
    rule(program, value_type=RewardRule.ValueType.FIXED, value=Decimal("15.00"), min_order_value=Decimal("100.00"))
    process(tenant, order(tenant, referrer[1], amount="150.00")["id"])
    _refund(tenant, "1001", "40.00", "r-1")  # 110 kept: still above the minimum
    assert _reward(tenant).value == Decimal("15.00")
    _refund(tenant, "1001", "20.00", "r-2")  # 90 kept: below it
    assert _reward(tenant).status == Reward.Status.VOIDED


def test_partial_refund_of_points_already_issued_takes_back_the_difference(tenant, program, referrer):
    rule(program, kind=Kind.POINTS, value=Decimal("10"), hold_days=0)  # 10% of the order in points
    process(tenant, order(tenant, referrer[1], amount="300.00")["id"])
    rewards_release_due()
    _refund(tenant, "1001", "100.00", "r-1")
    assert ledger_balance(participant=referrer[0]) == 20
    assert _reward(tenant).value == Decimal("20")


def test_the_same_refund_applied_twice_changes_nothing_more(tenant, program, referrer):
    rule(program)
    process(tenant, order(tenant, referrer[1], amount="200.00")["id"])
    assert _refund(tenant, "1001", "50.00", "r-1") == 1
    refund = Refund.objects.for_merchant(tenant.merchant).get()
    assert refund_apply(merchant=tenant.merchant, refund_id=refund.pk) == 0
    # The shop retries the same refund: 200 with the stored refund, no second effect.
    again = tenant.api.post("/api/v1/conversions/1001/refunds", {"amount": "50.00", "refund_id": "r-1"}, format="json")
    assert again.status_code == 200
    assert _reward(tenant).value == Decimal("15.00")


def test_refund_above_what_remains_is_422_and_changes_nothing(tenant, program, referrer):
    rule(program)
    process(tenant, order(tenant, referrer[1], amount="100.00")["id"])
    _refund(tenant, "1001", "60.00", "r-1")
    response = tenant.api.post(
        "/api/v1/conversions/1001/refunds", {"amount": "40.01", "refund_id": "r-2"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "refund_exceeds_order"
    assert _reward(tenant).value == Decimal("4.00")


def test_a_refund_before_the_rewards_are_decided_is_counted_once(tenant, program, referrer):
    rule(program)
    conversion = order(tenant, referrer[1], amount="200.00")
    _refund(tenant, "1001", "50.00", "r-1")  # nothing to adjust yet
    process(tenant, conversion["id"])  # decided on the 150.00 kept
    assert _reward(tenant).value == Decimal("15.00")


def test_a_partial_refund_after_the_coupon_was_used_frees_the_budget_it_took_back(tenant, program, referrer):
    program.budget = Decimal("20.00")
    program.save()
    rule(program, hold_days=0)
    process(tenant, order(tenant, referrer[1], order_id="a", amount="129.90")["id"])
    rewards_release_due()
    reward_redeem(reward=_reward(tenant), actor="test")  # the 12.99 coupon was used at checkout
    _refund(tenant, "a", "129.80", "r-1")  # 0.10 kept: the coupon is worth 0.01 now, the customer owes 12.98

    used = _reward(tenant)
    assert (used.status, used.value, used.taken_back, used.cost) == (
        "redeemed", Decimal("12.99"), Decimal("12.98"), Decimal("0.01")
    )  # fmt: skip
    assert budget_spent(program=program) == Decimal("0.01")
    assert "12.99 PLN (12.98 PLN taken back)" in tenant.admin.get("/admin/rewards/reward/").content.decode()
    api = tenant.api.get(f"/api/v1/rewards/{used.pk}").json()
    assert (api["value"], api["taken_back"]) == ("12.99", "12.98")
    process(tenant, order(tenant, referrer[1], order_id="b", amount="100.00", friend="f2@example.org")["id"])
    second = Reward.objects.for_merchant(tenant.merchant).get(conversion__order_id="b")
    assert second.status != Reward.Status.REJECTED, second.reason  # 0.01 + 10.00 fits in the 20.00 budget

    # A later refund takes back only what is left, and the full clawback ends it.
    _refund(tenant, "a", "0.10", "r-2")
    used.refresh_from_db()
    assert used.status == Reward.Status.CLAWED_BACK
    clawbacks = RewardAdjustment.objects.for_merchant(tenant.merchant).order_by("pk").values_list("clawback", flat=True)
    assert list(clawbacks) == [Decimal("12.98"), Decimal("0.01")]


def test_a_maximum_is_applied_in_the_currencys_decimals():
    terms = RewardRule(
        kind=Kind.AMOUNT_COUPON, value_type=RewardRule.ValueType.PERCENT_OF_ORDER, value=Decimal("10"),
        max_value=Decimal("99.50"),
    )  # fmt: skip
    assert rule_value(terms, order_amount=Decimal("5000"), currency="JPY") == Decimal("99")  # never above 99.50
    assert rule_value(terms, order_amount=Decimal("994"), currency="JPY") == Decimal("99")
    assert rule_value(terms, order_amount=Decimal("5000"), currency="PLN") == Decimal("99.50")
    points = RewardRule(
        kind=Kind.POINTS, value_type=RewardRule.ValueType.PERCENT_OF_ORDER, value=Decimal("100"),
        max_value=Decimal("50.50"),
    )  # fmt: skip
    assert rule_value(points, order_amount=Decimal("80"), currency="PLN") == Decimal("50")


def test_a_coupon_used_then_clawed_back_still_counts_towards_the_referrers_cap(tenant, program, referrer):
    rule(program, hold_days=0, cap_total=1)
    process(tenant, order(tenant, referrer[1], order_id="a")["id"])
    rewards_release_due()
    reward_redeem(reward=_reward(tenant), actor="test")
    _refund(tenant, "a", "129.90", "r-1")  # clawed back: the referrer used it, the friend returned everything
    assert _reward(tenant).status == Reward.Status.CLAWED_BACK

    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    second = Reward.objects.for_merchant(tenant.merchant).get(conversion__order_id="b")
    assert second.status == Reward.Status.REJECTED
    assert "Limit of 1" in second.reason


def test_a_reward_voided_before_it_was_used_frees_its_place_under_the_cap(tenant, program, referrer):
    rule(program, cap_total=1)
    process(tenant, order(tenant, referrer[1], order_id="a")["id"])
    _refund(tenant, "a", "129.90", "r-1")  # voided while on hold: never handed over
    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    second = Reward.objects.for_merchant(tenant.merchant).get(conversion__order_id="b")
    assert second.status == Reward.Status.PENDING
