"""Thin Celery wrappers: load the merchant, call one service. Every service here is safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from referral_saas.celery import coalesce_release, conversions_key
from referral_saas.tenancy.models import Merchant
from rewards import services

RETRY = {
    "acks_late": True,
    "ignore_result": True,
    # Deadlocks, serialization failures, a database restart: run again (the work is idempotent).
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 8,
}


def _merchant(merchant_id: int) -> Merchant | None:
    return Merchant.objects.filter(pk=merchant_id).first()


@shared_task(name="rewards.process_conversion", **RETRY)
def process_conversion(*, merchant_id: int, conversion_id: int, follow: bool = False) -> str:
    # The orders whose messages were coalesced into this one are looked for only after the next order may send one
    # again (referral_saas.celery.enqueue_coalesced_on_commit): none falls between the two.
    coalesce_release(conversions_key(merchant_id))
    merchant = _merchant(merchant_id)
    if merchant is None:
        return "skipped"
    # This order and, in the same transaction, other undecided orders of the merchant (rewards.services.batch).
    return services.conversions_process(merchant=merchant, conversion_id=conversion_id, follow=follow)


@shared_task(name="rewards.process_referral", **RETRY)
def process_referral(*, merchant_id: int, referral_id: int) -> str:
    merchant = _merchant(merchant_id)
    return services.referral_process(merchant=merchant, referral_id=referral_id) if merchant else "skipped"


@shared_task(name="rewards.check_milestones", **RETRY)
def check_milestones(*, merchant_id: int, program_id: int, referrer_id: int) -> int:
    merchant = _merchant(merchant_id)
    if merchant is None:
        return 0
    return services.milestones_check(merchant=merchant, program_id=program_id, referrer_id=referrer_id)


@shared_task(name="rewards.process_refund", **RETRY)
def process_refund(*, merchant_id: int, refund_id: int) -> int:
    merchant = _merchant(merchant_id)
    return services.refund_apply(merchant=merchant, refund_id=refund_id) if merchant else 0


@shared_task(name="rewards.release", **RETRY)
def release(*, merchant_id: int, reward_ids: list[int]) -> int:
    return sum(services.reward_release(merchant_id=merchant_id, reward_id=pk) == "issued" for pk in reward_ids)


@shared_task(name="rewards.release_due", **RETRY)
def release_due() -> int:
    return services.rewards_release_due()


@shared_task(name="rewards.send_notification", **{**RETRY, "autoretry_for": (OperationalError, OSError)})
def send_notification(*, merchant_id: int, notification_id: int) -> bool:
    merchant = _merchant(merchant_id)
    return services.notification_send(merchant=merchant, notification_id=notification_id) if merchant else False


@shared_task(name="rewards.send_notifications", **RETRY)
def send_notifications(*, merchant_id: int, notification_ids: list[int]) -> int:
    """The emails a batch of orders owes, in one message and over one mail-server connection; one that failed for
    a passing reason is handed to send_notification's retries, the others are sent."""
    merchant = _merchant(merchant_id)
    if merchant is None:
        return 0
    sent, retry = services.notifications_send_many(merchant=merchant, notification_ids=notification_ids)
    for pk in retry:
        send_notification.apply_async(kwargs={"merchant_id": merchant_id, "notification_id": pk}, countdown=5)
    return sent


@shared_task(name="rewards.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    return services.rewards_sweep()
