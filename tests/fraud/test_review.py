"""A human approves or rejects an assessment: the audit trail keeps it, the referral follows, the rewards worker
is told to continue (by task name, after commit)."""

from __future__ import annotations

from unittest import mock

import pytest
from celery import current_app

from fraud.models import Decision, FraudReviewEvent
from fraud.services import assessment_review, blocklist_entry_add, conversion_assess, referral_assess
from referral_saas.errors import Conflict, PermissionDeniedError, ValidationFailed
from referral_saas.tenancy.models import Membership
from tests.factories import MembershipFactory, UserFactory
from tracking.models import Conversion, Referral
from tracking.services import referral_record_signup

pytestmark = pytest.mark.django_db


@pytest.fixture
def send_task():
    """The message to the rewards worker (it leaves this app through the broker)."""
    with mock.patch.object(current_app, "send_task") as sent:
        yield sent


@pytest.fixture
def in_review(referrer, place_order):
    return conversion_assess(conversion=place_order(email="bob@mailinator.com", external_id=None))


def _state(tenant, assessment):
    conversion = Conversion.objects.for_merchant(tenant.merchant).get(pk=assessment.conversion_id)
    referral = Referral.objects.for_merchant(tenant.merchant).get(pk=assessment.referral_id)
    return conversion.status, conversion.rejection_reason, referral.status, referral.rejection_reason


def test_approving_a_review_keeps_the_order_and_tells_rewards_to_continue(
    tenant, in_review, send_task, django_capture_on_commit_callbacks
):
    assert in_review.decision == Decision.REVIEW
    with django_capture_on_commit_callbacks(execute=True):
        reviewed = assessment_review(assessment=in_review, approve=True, reason="Known customer", user=tenant.owner)

    assert (reviewed.decision, reviewed.auto_decision) == (Decision.APPROVE, Decision.REVIEW)
    assert (reviewed.reviewed_by, reviewed.review_reason) == (tenant.owner, "Known customer")
    assert reviewed.reviewed_at is not None
    assert _state(tenant, reviewed) == ("attributed", "", "converted", "")
    event = FraudReviewEvent.objects.for_merchant(tenant.merchant).get(assessment=reviewed)
    assert (event.user, event.action, event.previous_decision, event.reason) == (
        tenant.owner,
        "approve",
        "review",
        "Known customer",
    )
    send_task.assert_called_once()
    assert send_task.call_args.args[0] == "rewards.process_conversion"
    assert send_task.call_args.kwargs["kwargs"] == {
        "merchant_id": tenant.merchant.pk,
        "conversion_id": reviewed.conversion_id,
    }


def test_rejecting_a_review_rejects_the_referral_and_order_as_fraud(
    tenant, in_review, send_task, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reviewed = assessment_review(assessment=in_review, approve=False, reason="Throwaway inbox", user=tenant.owner)

    assert reviewed.decision == Decision.REJECT
    assert _state(tenant, reviewed) == ("rejected", "fraud", "rejected", "fraud")
    assert send_task.call_args.args[0] == "rewards.process_conversion"


def test_nothing_is_sent_before_the_review_commits(tenant, in_review, send_task, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assessment_review(assessment=in_review, approve=True, reason="ok", user=tenant.owner)
    assert send_task.call_count == 0
    assert len(callbacks) == 1


def test_overturning_an_automatic_reject_reinstates_the_referral_and_order(
    tenant, referrer, place_order, send_task, django_capture_on_commit_callbacks
):
    blocklist_entry_add(merchant=tenant.merchant, kind="ip", value="203.0.113.7")
    rejected = conversion_assess(conversion=place_order(ip="203.0.113.7"))
    assert _state(tenant, rejected) == ("rejected", "fraud", "rejected", "fraud")

    with django_capture_on_commit_callbacks(execute=True):
        assessment_review(assessment=rejected, approve=True, reason="Office IP, not fraud", user=tenant.owner)

    assert _state(tenant, rejected) == ("attributed", "", "converted", "")
    assert send_task.call_count == 1


def test_a_self_referral_rejected_by_attribution_is_not_reinstated_by_a_review(tenant, referrer, place_order):
    assessment = conversion_assess(conversion=place_order(email="bob@mailinator.com", external_id=None))
    Referral.objects.for_merchant(tenant.merchant).filter(pk=assessment.referral_id).update(
        status="rejected", rejection_reason="self_referral"
    )
    assessment_review(assessment=assessment, approve=False, reason="x", user=tenant.owner)
    assessment_review(assessment=assessment, approve=True, reason="y", user=tenant.owner)

    referral = Referral.objects.for_merchant(tenant.merchant).get(pk=assessment.referral_id)
    assert (referral.status, referral.rejection_reason) == ("rejected", "self_referral")


def test_every_decision_is_in_the_audit_trail_in_order(tenant, in_review):
    assessment_review(assessment=in_review, approve=False, reason="first look", user=tenant.owner)
    assessment_review(assessment=in_review, approve=True, reason="customer called", user=tenant.owner)

    trail = list(
        FraudReviewEvent.objects.for_merchant(tenant.merchant)
        .filter(assessment=in_review)
        .values_list("previous_decision", "action", "reason")
    )
    assert trail == [("review", "reject", "first look"), ("reject", "approve", "customer called")]


def test_a_sign_up_review_tells_rewards_about_the_referral(
    tenant, referrer, send_task, django_capture_on_commit_callbacks
):
    code = referrer[1]
    referral, _created = referral_record_signup(
        merchant=tenant.merchant,
        livemode=True,
        customer_external_id=None,
        customer_email="x@yopmail.com",
        code=code.code,
    )
    assessment = referral_assess(referral=referral)
    assert assessment.decision == Decision.REVIEW

    with django_capture_on_commit_callbacks(execute=True):
        assessment_review(assessment=assessment, approve=True, reason="fine", user=tenant.owner)

    send_task.assert_called_once()
    assert send_task.call_args.args[0] == "rewards.process_referral"
    assert send_task.call_args.kwargs["kwargs"] == {"merchant_id": tenant.merchant.pk, "referral_id": referral.pk}


def test_a_review_needs_a_reason(tenant, in_review):
    with pytest.raises(ValidationFailed):
        assessment_review(assessment=in_review, approve=True, reason="  ", user=tenant.owner)
    in_review.refresh_from_db()
    assert in_review.decision == Decision.REVIEW


def test_deciding_the_same_twice_is_a_conflict_and_changes_nothing(tenant, in_review):
    assessment_review(assessment=in_review, approve=True, reason="ok", user=tenant.owner)
    with pytest.raises(Conflict):
        assessment_review(assessment=in_review, approve=True, reason="again", user=tenant.owner)
    assert FraudReviewEvent.objects.for_merchant(tenant.merchant).count() == 1


def test_analysts_and_other_merchants_staff_cannot_review(tenant, other_tenant, in_review, send_task):
    analyst = UserFactory(email="analyst@alpha.example")
    MembershipFactory(merchant=tenant.merchant, user=analyst, role=Membership.Role.ANALYST)

    for user in (analyst, other_tenant.owner):
        with pytest.raises(PermissionDeniedError):
            assessment_review(assessment=in_review, approve=False, reason="no", user=user)

    in_review.refresh_from_db()
    assert in_review.decision == Decision.REVIEW
    assert not FraudReviewEvent.objects.for_merchant(tenant.merchant).exists()
    assert send_task.call_count == 0


def test_a_friend_rejected_at_sign_up_comes_back_when_both_assessments_are_approved(
    tenant, referrer, place_order, send_task
):
    code = referrer[1]
    blocklist_entry_add(merchant=tenant.merchant, kind="email", value="bob@friends.example")
    referral, _created = referral_record_signup(
        merchant=tenant.merchant,
        livemode=True,
        customer_external_id="c-77",
        customer_email="bob@friends.example",
        code=code.code,
    )
    at_sign_up = referral_assess(referral=referral)
    at_order = conversion_assess(conversion=place_order())
    assert (at_sign_up.decision, at_order.decision) == (Decision.REJECT, Decision.REJECT)

    assessment_review(assessment=at_sign_up, approve=True, reason="Bob is real", user=tenant.owner)
    referral.refresh_from_db()
    assert referral.status == "signed_up"
    assert _state(tenant, at_order)[:2] == ("rejected", "fraud")  # the order waits for its own review

    assessment_review(assessment=at_order, approve=True, reason="and so is his order", user=tenant.owner)
    assert _state(tenant, at_order) == ("attributed", "", "converted", "")
