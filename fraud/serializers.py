"""Fraud as the shop API shows it: the summary of an order's assessment, embedded in the conversion responses."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from fraud.models import Decision


@extend_schema_serializer(component_name="FraudSignal")
class FraudSignalOutput(serializers.Serializer):
    name = serializers.CharField(help_text="e.g. shared_ip, same_payment_fingerprint, disposable_email, velocity.")
    weight = serializers.IntegerField(help_text="Points this signal added to the score.")
    detail = serializers.CharField()


@extend_schema_serializer(component_name="FraudSummary")
class FraudSummaryOutput(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=100, help_text="Sum of the signals' weights, at most 100.")
    decision = serializers.ChoiceField(
        choices=Decision.values, help_text="approve, review (waits for the merchant) or reject; final after a review."
    )
    signals = FraudSignalOutput(many=True)
