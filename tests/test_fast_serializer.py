"""FastSerializer (referral_saas/serializers.py) answers and refuses exactly as DRF's Serializer, with fields of
each instance's own, and a nested serializer's context reaches its children."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework import serializers

from referral_saas.fields import AmountField, CurrencyField, KeyField
from referral_saas.serializers import FastSerializer


def _pair(base):
    class Child(base):
        name = serializers.CharField(max_length=5)
        shown = serializers.SerializerMethodField()

        def get_shown(self, obj) -> str:
            return f"{self.context['prefix']}{obj['name']}"

    class Order(base):
        order_id = KeyField()
        amount = AmountField()
        currency = CurrencyField()
        email = serializers.EmailField(required=False)
        kind = serializers.ChoiceField(choices=["a", "b"], required=False)
        ip = serializers.IPAddressField(required=False)
        when = serializers.DateTimeField(required=False)
        children = Child(many=True, required=False)
        tags = serializers.ListField(child=serializers.CharField(max_length=3), required=False)

    return Order


FAST, PLAIN = _pair(FastSerializer), _pair(serializers.Serializer)

INPUTS = [
    {"order_id": "1", "amount": "12.50", "currency": "PLN", "email": "a@b.pl", "kind": "a", "ip": "203.0.113.7"},
    {"order_id": "", "amount": "-1", "currency": "XXX", "email": "nope", "kind": "c", "ip": "1.2.3"},
    {"order_id": "2", "amount": 12.5, "currency": "EUR", "children": [{"name": "toolong"}], "tags": ["abcd", "ok"]},
    {"order_id": "3", "amount": "1", "currency": "EUR", "when": "2026-11-23T10:30:00Z", "children": [{"name": "ann"}]},
]


@pytest.mark.parametrize("data", INPUTS)
def test_it_validates_and_refuses_as_drf_does(data):
    fast, plain = FAST(data=data), PLAIN(data=data)
    assert fast.is_valid() == plain.is_valid()
    assert fast.errors == plain.errors
    if plain.is_valid():
        assert fast.validated_data == plain.validated_data


def test_it_answers_as_drf_does_with_the_context_reaching_nested_children():
    order = {"order_id": "9", "amount": Decimal("3.00"), "currency": "PLN", "children": [{"name": "ann"}]}
    for _ in range(3):  # the prototype is built once; later instances are copies of it
        fast = FAST(order, context={"prefix": "fast:"}).data
        plain = PLAIN(order, context={"prefix": "fast:"}).data
        assert fast == plain
        assert fast["children"] == [{"name": "ann", "shown": "fast:ann"}]


def test_each_instance_has_fields_of_its_own():
    first, second = FAST(data={}), FAST(data={})
    for name in ("order_id", "children", "tags"):
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
    assert first.fields["children"].child is not second.fields["children"].child


def test_valid_input_is_validated_without_building_the_instances_own_fields():
    data = INPUTS[3]
    fast = FAST(data=data)
    assert fast.is_valid(), fast.errors
    assert "fields" not in fast.__dict__  # validated by the class's one validating instance
    plain = PLAIN(data=data)
    assert plain.is_valid()
    assert fast.validated_data == plain.validated_data


def test_a_refused_input_is_reported_by_the_instances_own_fields():
    fast = FAST(data=INPUTS[1])
    assert not fast.is_valid()
    assert "fields" in fast.__dict__  # DRF's own path reported the errors


def test_a_serializer_whose_fields_read_the_context_validates_with_its_own_fields():
    class WithUser(FastSerializer):
        user = serializers.HiddenField(default=serializers.CurrentUserDefault())
        name = serializers.CharField()

    class Request:
        user = "ann"

    first = WithUser(data={"name": "x"}, context={"request": Request()})
    assert first.is_valid(), first.errors
    assert first.validated_data == {"user": "ann", "name": "x"}
    assert "fields" in first.__dict__


def test_a_partial_update_validates_with_its_own_fields():
    fast = FAST(data={"amount": "3"}, partial=True)
    assert fast.is_valid(), fast.errors
    assert fast.validated_data == {"amount": Decimal("3")}
    assert "fields" in fast.__dict__
