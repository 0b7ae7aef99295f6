"""From an attributed order to issued rewards: rules, values to the cent, holds, caps, budget, milestones, once."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from programs.models import Participant
from referral_saas.errors import Conflict
from rewards.models import Coupon, CouponPool, Kind, LedgerEntry, Notification, Reward, RewardEvent, RewardRule, Side
from rewards.selectors import ledger_balance
from rewards.services import (
    notification_send,
    referral_process,
    reward_release,
    reward_transition,
    rewards_release_due,
)
from tests.rewards.helpers import order, process, rule
from tracking.models import Referral

pytestmark = pytest.mark.django_db


def _rewards(tenant, **filters):
    return list(Reward.objects.for_merchant(tenant.merchant).filter(**filters).order_by("pk"))


def _due_now(tenant):
    Reward.objects.for_merchant(tenant.merchant).update(hold_until=timezone.now() - datetime.timedelta(seconds=1))


def test_first_purchase_pays_the_referrer_ten_percent_of_the_order_to_the_cent(tenant, program, referrer):
    rule(program)
    conversion = order(tenant, referrer[1], amount="129.95")
    assert process(tenant, conversion["id"]) == "approved"
    [reward] = _rewards(tenant)
    assert (reward.side, reward.participant, reward.kind) == (Side.REFERRER, referrer[0], Kind.AMOUNT_COUPON)
    assert reward.value == Decimal("13.00")  # 12.995 rounds half up to the grosz
    assert reward.currency == "PLN"
    assert reward.status == Reward.Status.PENDING
    assert reward.hold_until > timezone.now() + datetime.timedelta(days=29)
    assert [e.to_status for e in RewardEvent.objects.for_merchant(tenant.merchant)] == ["pending"]


def test_the_same_conversion_processed_twice_yields_one_reward(tenant, program, referrer):
    rule(program)
    conversion = order(tenant, referrer[1])
    assert process(tenant, conversion["id"]) == "approved"
    assert process(tenant, conversion["id"]) == "done_before"
    assert len(_rewards(tenant)) == 1


def test_a_percentage_is_capped_and_a_minimum_order_is_enforced(tenant, program, referrer):
    rule(program, max_value=Decimal("5.00"))
    rule(program, kind=Kind.POINTS, value_type=RewardRule.ValueType.FIXED, value=100, min_order_value=200)
    conversion = order(tenant, referrer[1], amount="129.90")
    process(tenant, conversion["id"])
    [reward] = _rewards(tenant)
    assert reward.value == Decimal("5.00")


def test_double_sided_each_purchase_up_to_n_and_first_purchase_only_once(tenant, program, referrer):
    program.new_customers_only = False  # repeat orders of the friend count
    program.save()
    rule(program)  # first purchase, referrer
    rule(
        program,
        side=Side.REFEREE,
        trigger=RewardRule.Trigger.EACH_PURCHASE,
        max_purchases=2,
        kind=Kind.POINTS,
        value=Decimal("1"),
    )
    for number in (1, 2, 3):
        conversion = order(tenant, referrer[1], order_id=f"o-{number}", amount="100.00")
        process(tenant, conversion["id"])
    referrer_rewards = _rewards(tenant, side=Side.REFERRER)
    friend_rewards = _rewards(tenant, side=Side.REFEREE)
    assert [r.value for r in referrer_rewards] == [Decimal("10.00")]
    assert [r.value for r in friend_rewards] == [Decimal("1"), Decimal("1")]  # 1% of 100 in points, twice
    friend = friend_rewards[0].participant
    assert friend.email == "friend1@example.org"  # the friend became a participant to be paid
    assert Referral.objects.for_merchant(tenant.merchant).get().referee == friend


def test_rules_of_another_variant_or_outside_their_dates_do_not_pay(tenant, program, referrer):
    from programs.models import ProgramVariant

    other = ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name="B")
    rule(program, variant=other)
    rule(
        program,
        valid_until=timezone.now() - datetime.timedelta(days=1),
        valid_from=timezone.now() - datetime.timedelta(days=9),
    )
    conversion = order(tenant, referrer[1])
    process(tenant, conversion["id"])
    assert _rewards(tenant) == []


@pytest.mark.parametrize("batched", [False, True], ids=["one at a time", "batched"])
def test_a_variants_own_rule_pays_its_friends_instead_of_the_programs(tenant, program, referrer, batched):
    from programs.models import ProgramVariant
    from rewards.services import conversions_process

    variant_b = ProgramVariant.objects.for_merchant(tenant.merchant).create(
        program=program, name="B", referrer_offer="15% of your friend's order"
    )
    rule(program, name="program: 10%")  # what the program offers (and variant A, which has no rule of its own)
    rule(program, name="B: 15%", variant=variant_b, value=Decimal("15"))
    rule(program, name="friend: 5% in points", side=Side.REFEREE, kind=Kind.POINTS, value=Decimal("5"))
    _anna, code = referrer
    code.variant = variant_b
    code.save(update_fields=["variant"])
    conversion = order(tenant, code, amount="200.00")
    if batched:
        conversions_process(merchant=tenant.merchant, conversion_id=conversion["id"])
    else:
        process(tenant, conversion["id"])
    paid = {(r.side, r.rule.name, r.value) for r in _rewards(tenant)}
    # B's referrer is paid B's 15%, not the program's 10% as well; the friend's side, which B does not change, is
    # paid by the program's rule.
    assert paid == {
        (Side.REFERRER, "B: 15%", Decimal("30.00")),
        (Side.REFEREE, "friend: 5% in points", Decimal("10.00")),
    }


def test_the_milestone_sweep_pays_a_variants_own_milestone_instead_of_the_programs(tenant, program, referrer):
    from programs.models import ProgramVariant
    from rewards.services.deciding import milestones_check

    variant_b = ProgramVariant.objects.for_merchant(tenant.merchant).create(program=program, name="B")
    anna, code = referrer
    code.variant = variant_b
    code.save(update_fields=["variant"])
    process(tenant, order(tenant, code)["id"])  # a converted friend of variant B, before any milestone rule
    milestone = {"trigger": RewardRule.Trigger.MILESTONE, "milestone": 1, "kind": Kind.POINTS,
                 "value_type": RewardRule.ValueType.FIXED, "hold_days": 0}  # fmt: skip
    rule(program, name="program: 1 friend, 5 points", value=Decimal("5"), **milestone)
    rule(program, name="B: 1 friend, 20 points", value=Decimal("20"), variant=variant_b, **milestone)
    assert milestones_check(merchant=tenant.merchant, program_id=program.pk, referrer_id=anna.pk) == 1
    assert [r.rule.name for r in _rewards(tenant, milestone=1)] == ["B: 1 friend, 20 points"]
    assert milestones_check(merchant=tenant.merchant, program_id=program.pk, referrer_id=anna.pk) == 0


def test_hold_then_release_issues_a_unique_coupon_and_emails_the_referrer(tenant, program, referrer):
    rule(program, coupon_prefix="THANKS", coupon_valid_days=90)
    process(tenant, order(tenant, referrer[1])["id"])
    assert rewards_release_due() == 0  # still inside the 30-day hold
    _due_now(tenant)
    assert rewards_release_due() == 1
    [reward] = _rewards(tenant)
    assert reward.status == Reward.Status.ISSUED
    assert reward.coupon_code.startswith("THANKS-")
    assert len(reward.coupon_code) == 15
    assert reward.expires_at > timezone.now() + datetime.timedelta(days=89)
    assert [e.to_status for e in reward.events.all()] == ["pending", "approved", "issued"]
    assert rewards_release_due() == 0  # issued once
    # The emails: "a friend bought" at the decision, "your reward is ready" at issue, in Anna's language.
    notes = Notification.objects.for_merchant(tenant.merchant).order_by("pk")
    assert [n.kind for n in notes] == ["friend_purchased", "reward_issued"]
    for note in notes:
        assert notification_send(merchant=tenant.merchant, notification_id=note.pk)
        assert not notification_send(merchant=tenant.merchant, notification_id=note.pk)  # sent once
    assert [m.to for m in mail.outbox] == [["anna.kowalska@gmail.com"]] * 2
    issued = mail.outbox[1]
    assert reward.coupon_code in issued.body
    assert reward.coupon_code in issued.alternatives[0][0]


def test_emails_are_in_the_participants_language(tenant, program, referrer):
    Participant.objects.for_merchant(tenant.merchant).filter(pk=referrer[0].pk).update(language="pl")
    rule(program, hold_days=0)
    process(tenant, order(tenant, referrer[1])["id"])
    reward_release(merchant_id=tenant.merchant.pk, reward_id=_rewards(tenant)[0].pk)
    for note in Notification.objects.for_merchant(tenant.merchant):
        notification_send(merchant=tenant.merchant, notification_id=note.pk)
    subjects = [m.subject for m in mail.outbox]
    assert any("znajom" in s.lower() or "nagrod" in s.lower() for s in subjects), subjects
    assert all('<html lang="pl">' in m.alternatives[0][0] for m in mail.outbox)  # screen readers read it in Polish


def test_points_and_store_credit_are_ledger_entries_and_the_balance_is_their_sum(tenant, program, referrer):
    rule(program, kind=Kind.POINTS, value_type=RewardRule.ValueType.FIXED, value=250, hold_days=0)
    rule(program, kind=Kind.STORE_CREDIT, value_type=RewardRule.ValueType.FIXED, value=Decimal("20.00"), hold_days=0)
    process(tenant, order(tenant, referrer[1])["id"])
    assert rewards_release_due() == 2
    assert ledger_balance(participant=referrer[0]) == 250
    assert ledger_balance(participant=referrer[0], account=LedgerEntry.Account.CREDIT) == Decimal("20.00")
    assert rewards_release_due() == 0
    assert LedgerEntry.objects.for_merchant(tenant.merchant).count() == 2


def test_pool_coupons_are_taken_in_order_and_an_empty_pool_flags_and_emails(tenant, program, referrer):
    pool = CouponPool.objects.for_merchant(tenant.merchant).create(program=program, name="15% codes")
    Coupon.objects.for_merchant(tenant.merchant).create(pool=pool, code="POOL-1")
    rule(program, kind=Kind.POOL_COUPON, pool=pool, value_type=RewardRule.ValueType.FIXED, value=0, hold_days=0)
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    assert rewards_release_due() == 1
    first, second = _rewards(tenant)
    assert (first.status, first.coupon_code) == (Reward.Status.ISSUED, "POOL-1")
    assert (second.status, second.flag) == (Reward.Status.APPROVED, Reward.Flag.POOL_EMPTY)
    note = Notification.objects.for_merchant(tenant.merchant).get(kind="pool_empty")
    notification_send(merchant=tenant.merchant, notification_id=note.pk)
    assert mail.outbox[-1].to == [tenant.owner.email]
    Coupon.objects.for_merchant(tenant.merchant).create(pool=pool, code="POOL-2")
    assert rewards_release_due() == 1
    second.refresh_from_db()
    assert (second.status, second.coupon_code, second.flag) == (Reward.Status.ISSUED, "POOL-2", "")


def test_test_mode_never_uses_up_a_real_pool_code(tenant, program):
    from tests.factories import join, reward_for

    pool = CouponPool.objects.for_merchant(tenant.merchant).create(program=program, name="100 PLN off")
    Coupon.objects.for_merchant(tenant.merchant).create(pool=pool, code="REAL-100-OFF")
    pool_rule = rule(
        program, kind=Kind.POOL_COUPON, pool=pool, value_type=RewardRule.ValueType.FIXED, value=0, hold_days=0
    )
    tester, _code = join(program, email="qa@shop.example", livemode=False)
    reward = reward_for(tester, pool_rule, hold_until=timezone.now())

    assert rewards_release_due() == 1

    reward.refresh_from_db()
    assert reward.status == Reward.Status.ISSUED
    assert reward.coupon_code.startswith("TEST-")
    assert Coupon.objects.for_merchant(tenant.merchant).get().reward_id is None  # still there for a real customer


def test_per_referrer_caps_reject_with_a_reason(tenant, program, referrer):
    rule(program, cap_total=1)
    process(tenant, order(tenant, referrer[1], order_id="a", friend="f1@example.org")["id"])
    process(tenant, order(tenant, referrer[1], order_id="b", friend="f2@example.org")["id"])
    first, second = _rewards(tenant)
    assert first.status == Reward.Status.PENDING
    assert second.status == Reward.Status.REJECTED
    assert "Limit of 1" in second.reason


def test_a_spent_budget_stops_rewards_and_emails_the_owner_once(tenant, program, referrer):
    program.budget = Decimal("20.00")
    program.save()
    rule(program)
    for n in (1, 2, 3):
        process(tenant, order(tenant, referrer[1], order_id=f"o{n}", friend=f"f{n}@example.org", amount="129.90")["id"])
    statuses = [r.status for r in _rewards(tenant)]
    assert statuses == ["pending", "rejected", "rejected"]  # 12.99 fits in 20.00, a second 12.99 does not
    [note] = Notification.objects.for_merchant(tenant.merchant).filter(kind="budget_spent")
    notification_send(merchant=tenant.merchant, notification_id=note.pk)
    assert "budget" in mail.outbox[-1].subject.lower()


def test_milestones_pay_once_each(tenant, program, referrer):
    rule(
        program,
        trigger=RewardRule.Trigger.MILESTONE,
        milestone=2,
        kind=Kind.FREE_PRODUCT,
        value_type=RewardRule.ValueType.FIXED,
        value=0,
        description="A free tote bag",
    )
    for n in (1, 2, 3):
        process(tenant, order(tenant, referrer[1], order_id=f"o{n}", friend=f"f{n}@example.org")["id"])
    [reward] = _rewards(tenant)
    assert (reward.milestone, reward.description, reward.participant) == (2, "A free tote bag", referrer[0])


def test_a_friends_sign_up_gives_the_welcome_coupon(tenant, program, referrer):
    rule(
        program,
        side=Side.REFEREE,
        trigger=RewardRule.Trigger.SIGNUP,
        kind=Kind.PERCENT_COUPON,
        value_type=RewardRule.ValueType.FIXED,
        value=10,
        hold_days=0,
    )
    response = tenant.api.post(
        "/api/v1/referrals",
        {"code": referrer[1].code, "customer": {"external_id": "c-9", "email": "new.friend@example.org"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert referral_process(merchant=tenant.merchant, referral_id=response.json()["id"]) == "approved"
    assert referral_process(merchant=tenant.merchant, referral_id=response.json()["id"]) == "done_before"
    rewards_release_due()
    [reward] = _rewards(tenant)
    assert (reward.side, reward.unit, reward.value, reward.status) == ("referee", "percent", Decimal("10"), "issued")
    assert reward.participant.email == "new.friend@example.org"
    note = Notification.objects.for_merchant(tenant.merchant).get()
    assert note.kind == "welcome_offer"
    notification_send(merchant=tenant.merchant, notification_id=note.pk)
    assert "10%" in mail.outbox[0].body  # in the friend's language (the program's: Polish)
    assert reward.coupon_code in mail.outbox[0].body


def test_illegal_transitions_are_refused(tenant, program, referrer):
    rule(program)
    process(tenant, order(tenant, referrer[1])["id"])
    [reward] = _rewards(tenant)
    with pytest.raises(Conflict):
        reward_transition(reward=reward, to=Reward.Status.REDEEMED, actor="test")
    reward_transition(reward=reward, to=Reward.Status.VOIDED, actor="user:owner@x", reason="Customer asked")
    with pytest.raises(Conflict):
        reward_transition(reward=reward, to=Reward.Status.APPROVED, actor="test")
    last = reward.events.last()
    assert (last.from_status, last.to_status, last.actor, last.reason) == (
        "pending",
        "voided",
        "user:owner@x",
        "Customer asked",
    )


def test_orders_refused_at_attribution_are_not_processed(tenant, program, referrer):
    rule(program)
    own = tenant.api.post(
        "/api/v1/conversions",
        {
            "order_id": "self",
            "amount": "50.00",
            "currency": "PLN",
            "customer": {"external_id": "c-42"},
            "code": referrer[1].code,
        },
        format="json",
    ).json()
    assert own["status"] == "rejected"
    assert process(tenant, own["id"]) == "skipped"
    assert _rewards(tenant) == []
