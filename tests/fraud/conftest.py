"""Fraud fixtures: orders of a referred friend (Bob) through the real attribution service, and clicks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tracking.models import Click
from tracking.services import conversion_record


@pytest.fixture
def place_order(referrer):
    """place_order(order_id, email=..., external_id=..., **conversion fields) -> Conversion, with Anna's code by
    default (pass code=None and click_id=... to come through a click)."""
    _participant, code = referrer

    def place(order_id: str = "F-1", *, email="bob@friends.example", external_id="c-77", **extra):
        extra.setdefault("code", code.code)
        conversion, _created = conversion_record(
            merchant=code.merchant,
            livemode=True,
            order_id=order_id,
            amount=Decimal("100.00"),
            currency="PLN",
            customer_email=email,
            customer_external_id=external_id,
            **extra,
        )
        return conversion

    return place


@pytest.fixture
def make_click(referrer):
    """make_click(seconds_ago=..., ip_hash=..., user_agent=...) -> a stored click on Anna's link."""
    _participant, code = referrer

    def make(*, seconds_ago: float = 3600, ip_hash: str = "", user_agent: str = "") -> Click:
        return Click.all_merchants.create(
            merchant=code.merchant,
            click_id=uuid.uuid4(),
            occurred_at=timezone.now() - timedelta(seconds=seconds_ago),
            program=code.program,
            code=code,
            participant=code.participant,
            ip_hash=ip_hash,
            user_agent=user_agent,
        )

    return make
