"""Shared steps for the rewards tests: rules, orders through the real API, the pipeline run by hand."""

from __future__ import annotations

from decimal import Decimal

from rewards.models import Kind, RewardRule, Side


def rule(program, **overrides) -> RewardRule:
    values = {
        "name": f"rule {RewardRule.objects.for_merchant(program.merchant).count() + 1}",
        "side": Side.REFERRER,
        "trigger": RewardRule.Trigger.FIRST_PURCHASE,
        "kind": Kind.AMOUNT_COUPON,
        "value_type": RewardRule.ValueType.PERCENT_OF_ORDER,
        "value": Decimal("10"),
        "hold_days": 30,
    }
    values.update(overrides)
    return RewardRule.objects.for_merchant(program.merchant).create(program=program, **values)


def order(tenant, code, order_id="1001", amount="129.90", friend="friend1@example.org", **extra):
    """POST /api/v1/conversions with the referrer's code; returns the response JSON."""
    body = {
        "order_id": order_id,
        "amount": amount,
        "currency": "PLN",
        "customer": {"external_id": f"ext-{friend}", "email": friend},
        "code": code.code if code is not None else None,
        **extra,
    }
    response = tenant.api.post("/api/v1/conversions", body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def process(tenant, conversion_id) -> str:
    from rewards.services import conversions_process

    return conversions_process(merchant=tenant.merchant, conversion_id=conversion_id)


def catalog_item_form(program, **changes) -> dict:
    """The admin's catalog item form, filled in as staff would (a 20 PLN voucher for 500 points)."""
    data = {
        "program": program.pk,
        "name": "20 PLN voucher",
        "description": "",
        "points": "500",
        "kind": "amount_coupon",
        "value": "20",
        "pool": "",
        "coupon_valid_days": "90",
        "active": "on",
        "position": "0",
    }
    data.update(changes)
    return data


REWARDS_ADMIN = "/admin/rewards/reward/"


def act(client, action, rewards, **extra):
    """Run an action of the admin's reward list on `rewards`, as staff would; the page it lands on."""
    data = {"action": action, "_selected_action": [r.pk for r in rewards], **extra}
    return client.post(REWARDS_ADMIN, data, follow=True)


def messages_of(response) -> list[str]:
    """The messages an admin page shows."""
    return [str(m) for m in response.context["messages"]] if response.context else []
