"""Reward rules have one set of rules (rewards.services.rules) whichever door writes them: the admin form, the
createmerchant command, seeding; and the database refuses what the engine cannot pay."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from referral_saas.errors import ValidationFailed
from referral_saas.tenancy.models import Merchant, User
from rewards.models import RewardRule
from rewards.services import reward_rule_create, reward_rule_update, reward_rule_validate
from rewards.services.rules import RULE_FIELDS
from tests.conftest import staff_client
from tests.factories import ProgramFactory, coupon_pool, reward_rule

pytestmark = pytest.mark.django_db

RULES = "/admin/rewards/rewardrule/"


def _change_form(rule: RewardRule, **changes) -> dict:
    """The admin change form of `rule` as the page fills it in, with `changes`."""

    def shown(value):
        return "" if value is None else value.pk if hasattr(value, "pk") else value

    data = {name: shown(getattr(rule, name)) for name in RULE_FIELDS if name not in ("valid_from", "valid_until")}
    data.update(valid_from_0="", valid_from_1="", valid_until_0="", valid_until_1="")
    data["active"] = "on" if rule.active else ""
    data.update(changes)
    return data


def test_the_demo_rules_of_createmerchant_pass_the_admins_rules_and_save_unchanged_in_the_admin():
    out = io.StringIO()
    call_command(
        "createmerchant", "--name", "Yen Shop", "--owner-email", "o@yen.example", "--currency", "JPY",
        "--demo-program", "--json", stdout=out,
    )  # fmt: skip
    merchant = Merchant.objects.get(slug=json.loads(out.getvalue())["merchant"])
    rules = list(RewardRule.objects.for_merchant(merchant).order_by("pk"))
    assert [(r.side, r.kind, r.value) for r in rules] == [
        ("referrer", "amount_coupon", 10),
        ("referee", "percent_coupon", 10),
    ]
    admin = staff_client(User.objects.get(email="o@yen.example"), merchant)
    for rule in rules:
        reward_rule_validate(merchant=merchant, values={name: getattr(rule, name) for name in RULE_FIELDS})
        response = admin.post(f"{RULES}{rule.pk}/change/", _change_form(rule))
        assert response.status_code == 302, response.context["adminform"].form.errors


def test_createmerchant_writes_its_rules_through_the_service_so_a_refusal_writes_nothing(monkeypatch):
    def refuse(**_fields):
        raise ValidationFailed(fields={"value": ["Enter a value greater than zero."]})

    monkeypatch.setattr("rewards.management.commands.createmerchant.reward_rule_create", refuse)
    with pytest.raises(CommandError, match="value: Enter a value greater than zero"):
        call_command("createmerchant", "--name", "Broken", "--owner-email", "b@x.example", "--demo-program")
    assert not Merchant.objects.filter(name="Broken").exists()


def test_the_service_refuses_an_invalid_rule_field_by_field_and_writes_nothing(tenant, program):
    with pytest.raises(ValidationFailed) as refused:
        reward_rule_create(
            merchant=tenant.merchant, program=program, name="Bad", side="referee", trigger="milestone",
            kind="percent_coupon", value=Decimal("150"), max_purchases=2, coupon_prefix="MY CODE",
        )  # fmt: skip
    fields = refused.value.fields
    assert "Enter how many successful referrals reach this milestone." in fields["milestone"]
    assert "Milestones reward the referrer: choose 'Referrer'." in fields["side"]
    assert "A percent-off coupon is between 0 and 100 (%)." in fields["value"]
    assert "Only used with 'each purchase'; leave it empty." in fields["max_purchases"]
    assert fields["coupon_prefix"]
    assert not RewardRule.objects.for_merchant(tenant.merchant).exists()


def test_the_service_refuses_another_merchants_program_or_pool(tenant, other_tenant, program):
    theirs = ProgramFactory(merchant=other_tenant.merchant)
    with pytest.raises(ValidationFailed) as refused:
        reward_rule_create(merchant=tenant.merchant, program=theirs, name="x", side="referrer", kind="cash", value=5)
    assert list(refused.value.fields) == ["program"]
    their_pool = coupon_pool(theirs)
    with pytest.raises(ValidationFailed) as refused:
        reward_rule_create(
            merchant=tenant.merchant, program=program, name="x", side="referrer", kind="pool_coupon", value=1,
            pool=their_pool,
        )  # fmt: skip
    assert list(refused.value.fields) == ["pool"]


def test_updating_a_rule_checks_it_again_and_a_taken_name_is_a_name_error(tenant, program):
    first = reward_rule(program, name="First")
    second = reward_rule(program, name="Second")
    with pytest.raises(ValidationFailed) as refused:
        reward_rule_update(rule=second, value_type="fixed")
    assert "caps a percentage of the order" in refused.value.fields["max_value"][0]
    second.refresh_from_db()
    with pytest.raises(ValidationFailed) as refused:
        reward_rule_update(rule=second, name=first.name)
    assert refused.value.fields == {"name": ["This program already has one with this name."]}
    second.refresh_from_db()
    reward_rule_update(rule=second, value=Decimal("12"))
    second.refresh_from_db()
    assert second.value == 12


def test_the_admin_saves_a_change_through_the_service(tenant, program):
    rule = reward_rule(program, name="Ten")
    response = tenant.admin.post(f"{RULES}{rule.pk}/change/", _change_form(rule, value="15"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.value == 15
    refused = tenant.admin.post(f"{RULES}{rule.pk}/change/", _change_form(rule, value="150"))
    assert "A percentage of the order is at most 100." in str(refused.context["adminform"].form.errors["value"])
    rule.refresh_from_db()
    assert rule.value == 15


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "percent_coupon", "value_type": "fixed", "max_value": None, "value": Decimal("101")},
        {"value": Decimal("100.01")},
        {"milestone": 3},
        {"trigger": "milestone", "milestone": 3, "side": "referee", "value_type": "fixed", "max_value": None},
        {"max_purchases": 2},
        {"value_type": "fixed"},
    ],
)
def test_the_database_refuses_a_rule_the_engine_cannot_pay(tenant, program, changes):
    values = {"name": "Direct", "side": "referrer", "kind": "amount_coupon", "value_type": "percent_of_order",
              "value": Decimal("10"), "max_value": Decimal("50"), **changes}  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        RewardRule.objects.for_merchant(tenant.merchant).create(program=program, **values)


def test_the_database_refuses_a_pool_on_a_rule_that_is_no_pool_coupon(tenant, program):
    pool = coupon_pool(program)
    with pytest.raises(IntegrityError), transaction.atomic():
        RewardRule.objects.for_merchant(tenant.merchant).create(
            program=program, name="Direct", side="referrer", kind="cash", value=5, pool=pool
        )
