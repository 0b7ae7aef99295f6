"""Scoring decides by the program's thresholds, rejects the referral on a reject, and scores an order once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fraud.models import Decision, FraudAssessment, FraudSettings
from fraud.selectors import settings_for
from fraud.services import NotScorable, blocklist_entry_add, conversion_assess, referral_assess, sighting_record
from tests.factories import ProgramFactory, join
from tests.threads import run_together
from tracking.models import Conversion, Referral
from tracking.services import conversion_record, referral_record_signup

pytestmark = pytest.mark.django_db


def test_a_program_without_settings_uses_the_defaults(program):
    rules = settings_for(program=program)
    assert rules.pk is None
    assert (rules.review_threshold, rules.reject_threshold) == (30, 70)
    assert (rules.velocity_per_hour, rules.velocity_per_day, rules.min_seconds_click_to_order) == (5, 20, 20)
    assert rules.check_disposable_email is True


@pytest.mark.parametrize(
    ("review", "reject", "expected"),
    [
        (31, 70, Decision.APPROVE),  # 30 is below the review threshold
        (30, 70, Decision.REVIEW),  # at the review threshold
        (10, 31, Decision.REVIEW),
        (10, 30, Decision.REJECT),  # at the reject threshold
    ],
)
def test_the_programs_thresholds_decide(tenant, program, referrer, place_order, review, reject, expected):
    FraudSettings.objects.for_merchant(tenant.merchant).create(
        program=program, review_threshold=review, reject_threshold=reject
    )
    assessment = conversion_assess(conversion=place_order(email="bob@mailinator.com", external_id=None))  # 30

    assert assessment.score == 30
    assert assessment.decision == assessment.auto_decision == expected


def test_a_reject_rejects_the_referral_and_its_orders_as_fraud(tenant, referrer, place_order):
    blocklist_entry_add(merchant=tenant.merchant, kind="domain", value="friends.example")
    order = place_order()

    assessment = conversion_assess(conversion=order)

    assert assessment.decision == Decision.REJECT
    order.refresh_from_db()
    referral = Referral.objects.for_merchant(tenant.merchant).get(pk=order.referral_id)
    assert (order.status, order.rejection_reason) == ("rejected", "fraud")
    assert (referral.status, referral.rejection_reason) == ("rejected", "fraud")
    # The friend's next order stays rejected: a referral rejected as fraud is never reopened.
    again = place_order("F-2")
    assert (again.status, again.rejection_reason) == ("rejected", "fraud")


def test_a_review_leaves_the_order_attributed_until_someone_decides(referrer, place_order):
    order = place_order(email="bob@mailinator.com", external_id=None)

    assert conversion_assess(conversion=order).decision == Decision.REVIEW
    order.refresh_from_db()
    assert order.status == "attributed"


def test_assessing_twice_returns_the_first_assessment(tenant, referrer, place_order):
    order = place_order()
    first = conversion_assess(conversion=order)
    # Whatever changes later, the order keeps the score it was given.
    blocklist_entry_add(merchant=tenant.merchant, kind="domain", value="friends.example")

    second = conversion_assess(conversion=order)

    assert second.pk == first.pk
    assert (second.score, second.decision) == (0, Decision.APPROVE)
    assert FraudAssessment.objects.for_merchant(tenant.merchant).count() == 1


def test_unattributed_orders_are_not_scored(tenant, program, place_order):
    order, _created = conversion_record(
        merchant=tenant.merchant, livemode=True, order_id="N-1", amount=Decimal("10.00"), currency="PLN"
    )
    with pytest.raises(NotScorable):
        conversion_assess(conversion=order)
    assert not FraudAssessment.objects.for_merchant(tenant.merchant).exists()


def test_scoring_costs_a_few_queries_however_much_the_referrer_did(tenant, referrer, place_order):
    anna = referrer[0]
    for n in range(30):
        sighting_record(merchant=tenant.merchant, participant=anna, ip=f"192.0.2.{n}", user_agent=f"UA {n}")
        place_order(f"ANNA-{n}", email="anna.kowalska@gmail.com", external_id="c-42", code=None, ip=f"192.0.2.{n}")
    for n in range(5):
        blocklist_entry_add(merchant=tenant.merchant, kind="cidr", value=f"10.{n}.0.0/16")
    order = Conversion.objects.for_merchant(tenant.merchant).get(pk=place_order(ip="203.0.113.7").pk)

    with CaptureQueriesContext(connection) as queries:
        assessment = conversion_assess(conversion=order)

    selects = [q for q in queries.captured_queries if q["sql"].startswith(("SELECT", "(SELECT"))]
    # the order + rules + existing assessment; velocity; the referrer's traces; the blocklist
    assert len(selects) == 4, [q["sql"][:120] for q in selects]
    assert assessment.decision == Decision.APPROVE


def test_a_sign_up_assessment_and_an_order_assessment_of_the_same_referral_coexist(referrer, place_order):
    code = referrer[1]
    referral, _created = referral_record_signup(
        merchant=code.merchant, livemode=True, customer_external_id="c-77", customer_email=None, code=code.code
    )
    at_sign_up = referral_assess(referral=referral)
    at_order = conversion_assess(conversion=place_order())

    assert at_sign_up.conversion_id is None
    assert at_order.conversion.referral_id == referral.pk
    assert referral_assess(referral=referral).pk == at_sign_up.pk


def test_another_merchants_scoring_sees_only_its_own_settings(tenant, other_tenant, program, referrer, place_order):
    other_program = ProgramFactory(merchant=other_tenant.merchant, slug="friends")
    FraudSettings.objects.for_merchant(other_tenant.merchant).create(program=other_program, review_threshold=1)
    join(other_program, email="someone@else.example")

    assert conversion_assess(conversion=place_order()).decision == Decision.APPROVE


# --- concurrency ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_scoring_of_one_order_makes_one_assessment_and_rejects_once(tenant, referrer, place_order):
    blocklist_entry_add(merchant=tenant.merchant, kind="email", value="bob@friends.example")
    order = place_order()
    results, errors = run_together(4, lambda _i: conversion_assess(conversion=order).pk)

    assert errors == []
    assert len(results) == 4
    assert len(set(results)) == 1
    assessment = FraudAssessment.objects.for_merchant(tenant.merchant).get()
    assert assessment.decision == Decision.REJECT
    order.refresh_from_db()
    assert (order.status, order.rejection_reason) == ("rejected", "fraud")
