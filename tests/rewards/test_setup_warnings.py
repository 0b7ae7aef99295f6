"""The admin's guardrails: a program whose rules pay nobody, a friend's "first order" coupon that arrives weeks after
that order, an A/B variant that offers one thing and pays the program's rules. Warned on the program's page and
after saving a rule; nothing is blocked or written."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest

from programs.models import ProgramVariant
from rewards.models import Kind, RewardRule, Side
from rewards.selectors import program_setup_warnings
from tests.rewards.helpers import rule

pytestmark = pytest.mark.django_db


def test_an_active_program_without_rules_is_warned_about_until_it_has_one(program):
    [warning] = program_setup_warnings(program=program)
    assert "no active reward rule" in warning
    rule(program)
    assert program_setup_warnings(program=program) == []


def test_a_held_coupon_for_the_friends_first_purchase_is_warned_about_a_sign_up_coupon_is_not(program):
    rule(program)
    rule(program, name="friend 15% (held)", side=Side.REFEREE, kind=Kind.PERCENT_COUPON, value=Decimal("15"),
         value_type=RewardRule.ValueType.FIXED, hold_days=30)  # fmt: skip
    [warning] = program_setup_warnings(program=program)
    assert "friend 15% (held)" in warning
    assert "30-day hold" in warning
    RewardRule.objects.for_merchant(program.merchant).filter(name="friend 15% (held)").update(
        trigger=RewardRule.Trigger.SIGNUP
    )
    assert program_setup_warnings(program=program) == []


def test_a_variant_offering_something_else_without_its_own_rule_is_warned_about(program):
    rule(program)
    variant = ProgramVariant.objects.for_merchant(program.merchant).create(
        program=program, name="B", referrer_offer="25 zł for each friend"
    )
    [warning] = program_setup_warnings(program=program)
    assert "Variant B offers “25 zł for each friend”" in warning
    assert "referrer" in warning
    rule(program, name="B: 25 zł", variant=variant, value_type=RewardRule.ValueType.FIXED, value=Decimal("25"))
    assert program_setup_warnings(program=program) == []


def test_the_programs_admin_page_and_a_saved_rule_show_the_warnings(tenant, program):
    page = html.unescape(tenant.admin.get(f"/admin/programs/program/{program.pk}/change/").content.decode())
    assert "has no active reward rule" in page
    form = {
        "name": "friend 10%", "program": program.pk, "side": "referee", "trigger": "first_purchase",
        "kind": "percent_coupon", "value_type": "fixed", "value": "10", "coupon_prefix": "REF", "hold_days": "14",
        "active": "on",
    }  # fmt: skip
    saved = tenant.admin.post("/admin/rewards/rewardrule/add/", form, follow=True)
    assert saved.status_code == 200
    assert RewardRule.objects.for_merchant(tenant.merchant).filter(name="friend 10%").exists()
    page = html.unescape(saved.content.decode())
    assert "“friend 10%” gives the friend a coupon for their first purchase after a 14-day hold" in page


def test_another_merchants_program_page_shows_nothing_of_it(tenant, other_tenant, program):
    assert tenant.admin.get(f"/admin/programs/program/{program.pk}/change/").status_code == 200
    assert other_tenant.admin.get(f"/admin/programs/program/{program.pk}/change/").status_code in (302, 404)
