"""An order and its refunds from Shopify do to referrals and rewards exactly what the same order and refunds do
through the shop API: the same conversion, the same reward, pro-rated and clawed back the same way. Two merchants
with the same program: one reports by API, the other's shop sends webhooks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.models import InboundEvent
from rewards.models import Reward
from rewards.services import conversion_process, refund_apply
from tests.factories import ProgramFactory, join, reward_rule, shop_connection
from tests.integrations.conftest import payload, process_all, shopify_post
from tracking.models import Conversion, Refund

pytestmark = pytest.mark.django_db

ORDER = payload("shopify", "orders_paid")


def _program(merchant):
    program = ProgramFactory(merchant=merchant, slug="friends", currency="PLN")
    reward_rule(program, kind="amount_coupon", value=Decimal("10"), max_value=Decimal("50"), hold_days=30)
    _anna, code = join(program, email="anna@example.pl", external_id="c-42", name="Anna")
    return code


def _apply_new_refunds(merchant, seen: set[int]) -> None:
    for refund in Refund.objects.for_merchant(merchant).exclude(pk__in=seen).order_by("pk"):
        refund_apply(merchant=merchant, refund_id=refund.pk)
        seen.add(refund.pk)


def _state(merchant) -> tuple:
    conversion = Conversion.objects.for_merchant(merchant).get()
    reward = Reward.objects.for_merchant(merchant).get()
    return (
        conversion.status,
        conversion.amount,
        conversion.refunded_amount,
        reward.status,
        reward.value,
        reward.original_value,
        reward.reason_code,
    )


def test_order_then_partial_then_full_refund_gives_the_same_rewards_and_clawbacks_as_the_api(
    client, tenant, other_tenant
):
    api_code = _program(tenant.merchant)
    shop_code = _program(other_tenant.merchant)
    shop = shop_connection(other_tenant.merchant, account="beta.myshopify.com")
    api, seen_api, seen_shop = tenant.api, set(), set()

    # The order: 200.00 PLN after discounts, with Anna's code.
    created = api.post(
        "/api/v1/conversions",
        {
            "order_id": "shopify:820982911946154508",
            "amount": "200.00",
            "currency": "PLN",
            "code": api_code.code,
            "customer": {"external_id": "115310627314723954", "email": "jon@example.com"},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    conversion_process(merchant=tenant.merchant, conversion_id=created.json()["id"])
    shopify_post(client, shop, "orders/paid", {**ORDER, "note_attributes": [{"name": "ref", "value": shop_code.code}]})
    process_all(other_tenant.merchant)
    conversion_process(
        merchant=other_tenant.merchant, conversion_id=Conversion.objects.for_merchant(other_tenant.merchant).get().pk
    )
    assert _state(tenant.merchant) == _state(other_tenant.merchant)
    assert _state(tenant.merchant)[4] == Decimal("20.00")

    # A partial refund of 50.00: the reward is pro-rated to the 150.00 kept.
    partial = api.post(
        "/api/v1/conversions/shopify:820982911946154508/refunds",
        {"amount": "50.00", "refund_id": "r-1"},
        format="json",
    )
    assert partial.status_code == 201, partial.content
    _apply_new_refunds(tenant.merchant, seen_api)
    shopify_post(client, shop, "refunds/create", payload("shopify", "refunds_create"))
    process_all(other_tenant.merchant)
    _apply_new_refunds(other_tenant.merchant, seen_shop)
    assert _state(tenant.merchant) == _state(other_tenant.merchant)
    assert _state(tenant.merchant)[4] == Decimal("15.00")

    # The rest is refunded (the order is cancelled): the reward is voided.
    full = api.post(
        "/api/v1/conversions/shopify:820982911946154508/refunds",
        {"amount": "150.00", "refund_id": "r-2"},
        format="json",
    )
    assert full.status_code == 201, full.content
    _apply_new_refunds(tenant.merchant, seen_api)
    shopify_post(client, shop, "orders/cancelled", payload("shopify", "orders_cancelled"))
    process_all(other_tenant.merchant)
    _apply_new_refunds(other_tenant.merchant, seen_shop)
    assert _state(tenant.merchant) == _state(other_tenant.merchant)
    assert _state(tenant.merchant)[3] == Reward.Status.VOIDED
    assert set(InboundEvent.objects.for_merchant(other_tenant.merchant).values_list("status", flat=True)) == {
        "processed"
    }
