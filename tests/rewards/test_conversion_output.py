"""ConversionOutput's written-out representation answers what DRF's field-by-field walk of its declared fields
answers (the fields are the schema and the reference), for orders of every kind: unattributed, attributed and
decided (fraud score, rewards), rejected, converted from another currency, partly refunded, with three decimals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from rewards.serializers import ConversionOutput
from tests.rewards.helpers import order, process, rule
from tracking.models import Conversion, ExchangeRate

pytestmark = pytest.mark.django_db


def _drf(conversion, **context):
    """What DRF's own Serializer.to_representation answers from ConversionOutput's declared fields."""
    return dict(serializers.Serializer.to_representation(ConversionOutput(context=context), conversion))


def _orders(tenant, program, referrer) -> list[Conversion]:
    _participant, code = referrer
    rule(program)
    ExchangeRate.objects.for_merchant(tenant.merchant).create(
        base_currency="EUR",
        quote_currency="PLN",
        rate=Decimal("4.2875"),
        valid_from=timezone.now().date() - timedelta(days=3),
    )
    order(tenant, code, "attributed", friend="b@example.org")
    order(tenant, None, "unattributed", friend="c@example.org")
    order(tenant, code, "self", friend="anna.kowalska@gmail.com")
    order(tenant, code, "euro", friend="d@example.org", currency="EUR", amount="10.05")
    order(tenant, code, "dinar", friend="e@example.org", currency="KWD", amount="12.345")
    order(tenant, code, "decided", friend="f@example.org")
    scope = Conversion.objects.for_merchant(tenant.merchant)
    process(tenant, scope.get(order_id="decided").pk)
    scope.filter(order_id="attributed").update(refunded_amount=Decimal("29.90"), program_refunded_amount="29.90")
    return list(scope.order_by("pk"))


def test_the_written_out_answer_is_drfs_for_orders_of_every_kind(tenant, program, referrer):
    conversions = _orders(tenant, program, referrer)
    kinds = {c.order_id: c for c in conversions}
    assert kinds["self"].rejection_reason == "self_referral"
    assert kinds["euro"].exchange_rate == Decimal("4.2875")
    assert kinds["dinar"].rejection_reason == "currency_mismatch"
    for conversion in conversions:
        assert ConversionOutput(conversion).data == _drf(conversion)
    decided = ConversionOutput(kinds["decided"]).data
    assert decided["fraud"] is not None
    assert decided["rewards"]


def test_a_page_of_orders_answers_as_drf_does_with_the_context_loaded_once(tenant, program, referrer):
    conversions = _orders(tenant, program, referrer)
    context = {"fraud": {}, "rewards": {}}
    assert ConversionOutput(conversions, many=True, context=context).data == [_drf(c, **context) for c in conversions]
    answered = tenant.api.get("/api/v1/conversions?limit=50").json()["results"]
    assert sorted(answered, key=lambda a: a["id"]) == [_drf(c) for c in conversions]
