"""Why a reward ended is a stored code, set by the service that ended it; the portal says it in the customer's
language by that code, never by reading the staff's English note."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.test import Client

from rewards.models import Reward
from tests.factories import reward_for, reward_rule
from tests.portal.test_portal_rewards import _page, _sign_in
from tests.rewards.helpers import order, process, rule
from tests.rewards.test_refunds import _refund

pytestmark = pytest.mark.django_db

REWARDS = "/admin/rewards/reward/"


def _only_reward(tenant, **filters) -> Reward:
    return Reward.objects.for_merchant(tenant.merchant).get(**filters)


def test_a_per_person_limit_is_said_in_english_and_polish(tenant, program, referrer):
    participant, code = referrer
    rule(program, cap_total=1)
    process(tenant, order(tenant, code, order_id="a", friend="f1@example.org")["id"])
    process(tenant, order(tenant, code, order_id="b", friend="f2@example.org")["id"])
    capped = _only_reward(tenant, status="rejected")
    assert capped.reason_code == Reward.ReasonCode.CAP

    browser = _sign_in(Client(), program, participant)
    assert "You reached the program's limit of rewards." in _page(browser, program)
    polish = _page(browser, program, lang="pl")
    assert "Osiągnięto limit nagród w programie." in polish
    assert "Limit of 1" not in polish


def test_a_reward_voided_by_staff_is_cancelled_by_the_shop_whatever_their_note_says(tenant, program, referrer):
    """The note mentions a refund, which made the portal say the order was returned; the code says staff did it."""
    participant, _code = referrer
    reward = reward_for(participant, reward_rule(program))
    done = tenant.admin.post(
        REWARDS,
        {"action": "void", "_selected_action": [reward.pk], "apply": "yes", "reason": "Customer wants a refund"},
        follow=True,
    )
    assert "1 reward is now voided." in [str(m) for m in done.context["messages"]]
    reward.refresh_from_db()
    assert reward.reason_code == Reward.ReasonCode.STAFF

    browser = _sign_in(Client(), program, participant)
    english = _page(browser, program)
    assert "The shop cancelled this reward." in english
    assert "The order was returned" not in english
    polish = _page(browser, program, lang="pl")
    assert "Sklep anulował tę nagrodę." in polish
    assert "Customer wants a refund" not in polish


def test_a_refund_voids_with_its_code_and_the_portal_says_the_order_was_returned(tenant, program, referrer):
    participant, code = referrer
    rule(program)
    process(tenant, order(tenant, code)["id"])
    _refund(tenant, "1001", "129.90", "r-1")
    assert _only_reward(tenant).reason_code == Reward.ReasonCode.REFUND
    browser = _sign_in(Client(), program, participant)
    assert "The order was returned before the reward was used." in _page(browser, program)
    assert "Zamówienie zostało zwrócone, zanim nagroda została wykorzystana." in _page(browser, program, lang="pl")


def test_the_data_migration_gives_old_rows_the_code_their_note_showed(tenant, program, referrer):
    participant, _code = referrer
    credit = reward_rule(program)
    rows = {
        note_status: reward_for(participant, credit, status=note_status[1], reason=note_status[0])
        for note_status in [
            ("Rejected as fraud.", "rejected"),
            ("Limit of 3 rewards per person reached.", "rejected"),
            ("The program's budget is spent.", "rejected"),
            ("The referral was rejected.", "rejected"),
            ("Looks like fraud, over the limit of 2", "rejected"),
            ("Terms not met", "rejected"),
            ("Order refunded (r-9).", "voided"),
            ("Sent by mistake", "voided"),
            ("Order refunded (r-8).", "clawed_back"),
        ]
    }
    migration = importlib.import_module("rewards.migrations.0007_reward_reason_code")
    migration.fill_from_notes(apps, None)
    codes = {key[0]: Reward.objects.for_merchant(tenant.merchant).get(pk=r.pk).reason_code for key, r in rows.items()}
    assert codes == {
        "Rejected as fraud.": "fraud",
        "Limit of 3 rewards per person reached.": "cap",
        "The program's budget is spent.": "budget",
        "The referral was rejected.": "referral_rejected",
        "Looks like fraud, over the limit of 2": "fraud",
        "Terms not met": "",
        "Order refunded (r-9).": "refund",
        "Sent by mistake": "",
        "Order refunded (r-8).": "refund",
    }
