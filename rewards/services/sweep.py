"""The sweeper: finds work whose Celery message was lost (Redis down, a worker killed before it acknowledged)
and sends it again. Everything it resends is safe to run twice."""

from __future__ import annotations

import datetime

from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.utils import timezone

from fraud.models import FraudAssessment
from referral_saas.celery import app
from rewards.models import Kind, Notification, Reward, RewardRule, Side, Work
from rewards.selectors import milestone_orders
from tracking.models import Conversion, Referral, Refund

GRACE = datetime.timedelta(seconds=30)  # the normal path's message is probably still on its way
HORIZON = datetime.timedelta(days=14)  # older than this, a person looks (the admin shows unprocessed orders)
BATCH = 1000
ITEM_KINDS = (Kind.POOL_COUPON, Kind.FREE_PRODUCT, Kind.CUSTOM)  # rewards with no amount


def rewards_sweep(*, now: datetime.datetime | None = None, send=None) -> dict[str, int]:
    """Resend unprocessed conversions, sign-ups and refunds, decided reviews, due rewards and unsent emails."""

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

    # Milestones reached and not paid (lost before one referrer's friends were decided one at a time): referrers
    # with a friend's order decided recently are checked again.
    unpaid = list(_unpaid_milestones(now=now))
    for merchant_id, program_id, referrer_id in unpaid:
        send("rewards.check_milestones", merchant_id=merchant_id, program_id=program_id, referrer_id=referrer_id)
    counts["milestones"] = len(unpaid)

    refund_work = Work.all_merchants.filter(refund_id=OuterRef("pk"))
    refunds = (
        Refund.all_merchants.filter(**window).filter(~Exists(refund_work)).values_list("merchant_id", "pk")[:BATCH]
    )
    for merchant_id, pk in refunds:
        send("rewards.process_refund", merchant_id=merchant_id, refund_id=pk)
    counts["refunds"] = len(refunds)

    due = (
        Reward.all_merchants.filter(
            status__in=(Reward.Status.PENDING, Reward.Status.APPROVED),
            hold_until__lte=now,
            flag__in=("", Reward.Flag.PLATFORM_PENDING),
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


def _unpaid_milestones(*, now: datetime.datetime):
    """(merchant, program, referrer) of referrers with a friend's order decided in the sweep's window who have
    reached a milestone that pays them now (active, valid now, for everyone or a variant of one of their friends,
    worth something) and have no reward for it. One query; successful friends counted as milestones count them."""

    rules = (
        RewardRule.all_merchants.filter(
            trigger=RewardRule.Trigger.MILESTONE, side=Side.REFERRER, active=True, milestone__isnull=False
        )
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Q(value__gt=0) | Q(kind__in=ITEM_KINDS))  # a zero amount is never made: not worth a resend a minute
    )
    converted = Referral.all_merchants.filter(status=Referral.Status.CONVERTED)
    friend_of_variant = converted.filter(
        program_id=OuterRef(OuterRef("program_id")),
        referrer_id=OuterRef(OuterRef("referrer_id")),
        variant_id=OuterRef("variant_id"),
    )
    paid = Reward.all_merchants.filter(
        rule_id=OuterRef("pk"), participant_id=OuterRef(OuterRef("referrer_id")), milestone=OuterRef("milestone")
    )
    lowest_unpaid = (
        rules.filter(program_id=OuterRef("program_id"))
        .filter(Q(variant__isnull=True) | Exists(friend_of_variant))
        .filter(~Exists(paid))
        .order_by("milestone")
        .values("milestone")[:1]
    )
    recent = Work.all_merchants.filter(
        conversion__isnull=False,
        refund__isnull=True,
        stage=Work.Stage.DONE,
        decision="approve",
        updated_at__lt=now - GRACE,
        updated_at__gte=now - HORIZON,
    ).values("referral__referrer_id")
    return (
        converted.filter(program_id__in=rules.values("program_id"), referrer_id__in=recent)
        .filter(Exists(milestone_orders(Work.all_merchants)))
        .values("merchant_id", "program_id", "referrer_id")
        .annotate(successful=Count("pk"))
        .filter(successful__gte=Subquery(lowest_unpaid))  # in HAVING, once per referrer
        .order_by()
        .values_list("merchant_id", "program_id", "referrer_id")[:BATCH]
    )
