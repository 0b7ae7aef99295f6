"""Celery tasks of the webhooks queue: thin wrappers around services (routed by the name prefix)."""

from celery import shared_task
from django.db import DatabaseError

from referral_saas.webhooks import services


@shared_task(
    name=services.DELIVER_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=5,
)
def deliver(*, merchant_id: int, delivery_id: int) -> str | None:
    """Make the due attempt of one delivery (nothing when it is not due or another worker has it)."""
    return services.delivery_attempt(merchant_id=merchant_id, delivery_id=delivery_id)


@shared_task(name="referral_saas.webhooks.sweep", acks_late=True, ignore_result=True)
def sweep() -> int:
    """Scheduled by beat: enqueue every delivery that is due (retries, lost messages, dead workers)."""
    return len(services.deliveries_sweep())


@shared_task(name="referral_saas.webhooks.purge", acks_late=True, ignore_result=True)
def purge() -> int:
    """Scheduled by beat (daily): forget delivered events older than 30 days."""
    return services.messages_purge()
