"""Shop platforms as the tests see them: documented sample payloads (payloads/<platform>/), signed here with the
connection's secret, posted to the real inbound endpoint; events processed by calling the worker's service."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from integrations.models import InboundEvent
from integrations.providers.shopify import sign
from integrations.services import inbound_event_process
from integrations.services.inbound import RetryLater
from rewards.models import Reward
from rewards.services import reward_release
from tests.factories import reward_for, reward_rule, shop_connection

PAYLOADS = Path(__file__).parent / "payloads"


def payload(platform: str, name: str, **changes) -> dict:
    data = json.loads((PAYLOADS / platform / f"{name}.json").read_text())
    data.update(changes)
    return data


def shopify_post(client, connection, topic: str, data: dict, *, secret="hush", event_id: str = "", **headers):
    body = json.dumps(data).encode()
    return client.post(
        connection.webhook_path,
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret, body),
            "X-Shopify-Shop-Domain": connection.account,
            "X-Shopify-Webhook-Id": event_id or f"wh-{topic}-{data.get('id', '')}",
            "X-Shopify-Api-Version": "2025-10",
            **headers,
        },
    )


def process_all(merchant) -> list[str]:
    """One pass of what the worker does with every event still to process, oldest first."""
    statuses = []
    pending = InboundEvent.objects.for_merchant(merchant).filter(
        status__in=[InboundEvent.Status.RECEIVED, InboundEvent.Status.WAITING]
    )
    for pk in pending.order_by("received_at", "pk").values_list("pk", flat=True):
        try:
            statuses.append(inbound_event_process(merchant_id=merchant.pk, event_id=pk))
        except RetryLater:
            statuses.append("retry")
    return statuses


@pytest.fixture
def shopify(merchant):
    return shop_connection(
        merchant, account="alpha-shop.myshopify.com", secret="hush", credentials={"access_token": "shpat_test"}
    )


@pytest.fixture
def coupon_reward(program, referrer):
    """An approved 20.00 amount-off coupon reward of the referrer, due now (the platform must create it first)."""
    anna, _code = referrer
    rule = reward_rule(program, kind="amount_coupon", coupon_valid_days=30, hold_days=0)
    return reward_for(anna, rule, value=Decimal("20.00"), status=Reward.Status.APPROVED, hold_until=timezone.now())


def released(reward) -> Reward:
    """Release the reward as the worker does and read it back."""
    reward_release(merchant_id=reward.merchant_id, reward_id=reward.pk)
    return Reward.objects.for_merchant(reward.merchant_id).get(pk=reward.pk)
