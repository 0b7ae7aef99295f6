"""Staff voiding and rejecting rewards: the rule ("an issued reward in the balance cannot be voided") lives in the
services (reward_void, reward_reject, and the transition they share), so the admin actions and any other caller
get the same answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from referral_saas.errors import Conflict, ValidationFailed
from rewards.models import Reward
from rewards.services import reward_release_early, reward_transition, reward_void
from rewards.services.transitions import reward_reject
from tests.factories import reward_for, reward_rule
from tests.rewards.helpers import act, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna(referrer):
    return referrer[0]


def _issued_points(program, anna) -> Reward:
    rule = reward_rule(program, kind="points", value_type="fixed", value=Decimal("100"), max_value=None)
    reward = reward_for(anna, rule)
    reward_release_early(reward=reward, actor="system:test")
    reward.refresh_from_db()
    assert reward.status == "issued"
    return reward


def test_the_transition_itself_refuses_to_void_an_issued_reward_in_the_balance(tenant, program, anna):
    reward = _issued_points(program, anna)
    with pytest.raises(Conflict) as refused:
        reward_transition(reward=reward, to=Reward.Status.VOIDED, actor="system:test", reason="x")
    assert refused.value.code == "reward_in_balance"
    with pytest.raises(Conflict):
        reward_void(reward=reward, actor="system:test", reason="Changed my mind")
    reward.refresh_from_db()
    assert reward.status == "issued"


def test_an_issued_coupon_not_used_yet_can_still_be_voided_through_the_admin_action(tenant, program, anna):
    reward = reward_for(anna, reward_rule(program))
    reward_release_early(reward=reward, actor="system:test")
    response = act(tenant.admin, "void", [reward], apply="yes", reason="Sent to the wrong person")
    assert "1 reward is now voided." in messages_of(response)
    reward.refresh_from_db()
    assert (reward.status, reward.reason) == ("voided", "Sent to the wrong person")


def test_the_admin_action_reports_a_balance_reward_and_voids_the_rest_of_the_selection(tenant, program, anna):
    in_balance = _issued_points(program, anna)
    pending = reward_for(anna, reward_rule(program))
    response = act(tenant.admin, "void", [in_balance, pending], apply="yes", reason="Cleanup")
    messages = messages_of(response)
    assert any("already in the customer's balance" in m for m in messages)
    assert "1 reward is now voided." in messages
    in_balance.refresh_from_db()
    pending.refresh_from_db()
    assert (in_balance.status, pending.status) == ("issued", "voided")


def test_reject_is_for_rewards_not_handed_over_and_needs_a_reason(tenant, program, anna):
    pending = reward_for(anna, reward_rule(program))
    with pytest.raises(ValidationFailed) as refused:
        reward_reject(reward=pending, actor="system:test", reason="   ")
    assert "reason" in refused.value.fields
    reward_reject(reward=pending, actor="user:x@example.org", reason="Fraud ring")
    pending.refresh_from_db()
    assert (pending.status, pending.reason) == ("rejected", "Fraud ring")

    issued = _issued_points(program, anna)
    response = act(tenant.admin, "reject", [issued], apply="yes", reason="Too late")
    assert any("cannot become rejected" in m for m in messages_of(response))
    issued.refresh_from_db()
    assert issued.status == "issued"


# --- cash payouts: one definition of what is due ----------------------------------------------------------------


def _cash(participant, program, amount: str, kind="earned", livemode=True):
    from rewards.models import LedgerEntry

    return LedgerEntry.objects.for_merchant(participant.merchant).create(
        program=program, participant=participant, account="cash", kind=kind, amount=Decimal(amount),
        currency=program.currency, livemode=livemode,
    )  # fmt: skip


def test_a_payout_posted_from_a_page_opened_before_another_payout_is_checked_against_what_is_due_now(
    tenant, program, anna
):
    from rewards.services import cash_payout_record

    _cash(anna, program, "40.00")
    url = f"/admin/rewards/ledgerentry/cash-due/{anna.pk}/payout/?currency=PLN"
    assert tenant.admin.get(url).context["form"].initial["amount"] == Decimal("40.00")
    cash_payout_record(participant=anna, program=program, amount=Decimal("30.00"), user=tenant.owner)
    late = tenant.admin.post(url, {"program": program.pk, "amount": "40.00", "note": ""})
    assert late.status_code == 200
    assert "That is more than the 10.00 PLN due." in str(late.context["form"].errors["amount"])


def test_test_mode_cash_is_never_due_so_neither_the_page_nor_the_service_pays_it(tenant, program):
    from tests.factories import join

    tester = join(program, email="tester@people.example", livemode=False)[0]
    _cash(tester, program, "25.00", livemode=False)
    page = tenant.admin.get(f"/admin/rewards/ledgerentry/cash-due/{tester.pk}/payout/?currency=PLN", follow=True)
    assert any("Nothing is due" in m for m in messages_of(page))
    from rewards.services import cash_payout_record

    with pytest.raises(ValidationFailed) as refused:
        cash_payout_record(participant=tester, program=program, amount=Decimal("25.00"), user=tenant.owner)
    assert refused.value.fields["amount"] == ["That is more than the 0.00 PLN due."]
