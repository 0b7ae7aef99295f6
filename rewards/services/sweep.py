"""The sweeper: finds work whose Celery message was lost (Redis down, a worker killed before it acknowledged)
and sends it again. Everything it resends is safe to run twice."""

from __future__ import annotations

import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from rewards.models import Notification, Reward, Work
from tracking.models import Conversion, Referral, Refund

GRACE = datetime.timedelta(seconds=30)  # the normal path's message is probably still on its way
HORIZON = datetime.timedelta(days=14)  # older than this, a person looks (the admin shows unprocessed orders)
BATCH = 1000


def rewards_sweep(*, now: datetime.datetime | None = None, send=None) -> dict[str, int]:
    """Resend unprocessed conversions, sign-ups and refunds, decided reviews, due rewards and unsent emails."""
    from referral_saas.celery import app

    now = now or timezone.now()
    send = send or (lambda name, **kwargs: app.send_task(name, kwargs=kwargs))
    window = {"created_at__lt": now - GRACE, "created_at__gte": now - HORIZON}
    counts = {}

    conversion_work = Work.all_merchants.filter(conversion_id=OuterRef("pk"), refund__isnull=True)
    conversions = (
        Conversion.all_merchants.filter(
            Q(status=Conversion.Status.ATTRIBUTED) | Q(rejection_reason=Referral.Reason.FRAUD),
            referral__isnull=False,
            **window,
        )
        .filter(~Exists(conversion_work))
        .values_list("merchant_id", "pk")[:BATCH]
    )
    for merchant_id, pk in conversions:
        send("rewards.process_conversion", merchant_id=merchant_id, conversion_id=pk)
    counts["conversions"] = len(conversions)

    # Decisions a person made (or overturned) whose follow-up message was lost: the assessment's decision is not
    # the one the pipeline acted on.
    from fraud.models import FraudAssessment

    order_decided = FraudAssessment.all_merchants.filter(conversion_id=OuterRef("conversion_id")).exclude(
        decision=OuterRef("decision")
    )
    signup_decided = FraudAssessment.all_merchants.filter(
        referral_id=OuterRef("referral_id"), conversion__isnull=True
    ).exclude(decision=OuterRef("decision"))
    reviewed_orders = list(
        Work.all_merchants.filter(refund__isnull=True, conversion__isnull=False, updated_at__gte=now - HORIZON)
        .filter(Exists(order_decided.exclude(decision="review")))
        .values_list("merchant_id", "conversion_id")[:BATCH]
    )
    for merchant_id, pk in reviewed_orders:
        send("rewards.process_conversion", merchant_id=merchant_id, conversion_id=pk)
    reviewed_signups = list(
        Work.all_merchants.filter(refund__isnull=True, conversion__isnull=True, updated_at__gte=now - HORIZON)
        .filter(Exists(signup_decided.exclude(decision="review")))
        .values_list("merchant_id", "referral_id")[:BATCH]
    )
    for merchant_id, pk in reviewed_signups:
        send("rewards.process_referral", merchant_id=merchant_id, referral_id=pk)
    counts["reviewed"] = len(reviewed_orders) + len(reviewed_signups)

    signup_work = Work.all_merchants.filter(referral_id=OuterRef("pk"), conversion__isnull=True, refund__isnull=True)
    signups = (
        Referral.all_merchants.filter(status=Referral.Status.SIGNED_UP, **window)
        .filter(~Exists(signup_work))
        .values_list("merchant_id", "pk")[:BATCH]
    )
    signups = list(signups) + list(
        # Signed up and bought before the sign-up's message was handled.
        Referral.all_merchants.filter(
            status=Referral.Status.CONVERTED, signed_up_at__isnull=False, signed_up_at__gte=now - HORIZON
        )
        .filter(signed_up_at__lt=now - GRACE)
        .filter(~Exists(signup_work))
        .values_list("merchant_id", "pk")[:BATCH]
    )
    for merchant_id, pk in signups:
        send("rewards.process_referral", merchant_id=merchant_id, referral_id=pk)
    counts["signups"] = len(signups)

    refund_work = Work.all_merchants.filter(refund_id=OuterRef("pk"))
    refunds = (
        Refund.all_merchants.filter(**window).filter(~Exists(refund_work)).values_list("merchant_id", "pk")[:BATCH]
    )
    for merchant_id, pk in refunds:
        send("rewards.process_refund", merchant_id=merchant_id, refund_id=pk)
    counts["refunds"] = len(refunds)

    due = (
        Reward.all_merchants.filter(
            status__in=(Reward.Status.PENDING, Reward.Status.APPROVED), hold_until__lte=now, flag=""
        ).exists()
        or Reward.all_merchants.filter(status=Reward.Status.APPROVED, flag=Reward.Flag.POOL_EMPTY).exists()
    )
    if due:
        send("rewards.release_due")
    counts["release"] = int(due)

    unsent = list(
        Notification.all_merchants.filter(
            sent_at__isnull=True, failed_at__isnull=True, created_at__lt=now - GRACE
        ).values_list("merchant_id", "pk")[:BATCH]
    )
    for merchant_id, pk in unsent:
        send("rewards.send_notification", merchant_id=merchant_id, notification_id=pk)
    counts["notifications"] = len(unsent)
    return counts
