"""Celery tasks of the integrations queue: thin wrappers around services (routed by the name prefix)."""

from celery import shared_task
from django.db import DatabaseError

from integrations import services
from integrations.http import PlatformError
from integrations.services import marketing, reconcile, woocommerce
from integrations.services.inbound import RetryLater


@shared_task(
    name=services.PROCESS_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=8,
)
def process_event(self, *, merchant_id: int, event_id: int) -> str:
    """Process one stored inbound event; a transient failure is tried again here (and by the sweeper after)."""
    try:
        return services.inbound_event_process(merchant_id=merchant_id, event_id=event_id)
    except RetryLater as exc:
        if self.request.retries >= self.max_retries:
            return "failed"  # the event keeps its next_attempt_at: the sweeper sends it again
        raise self.retry(exc=exc, countdown=min(exc.countdown, 600)) from exc


@shared_task(
    name=woocommerce.INSTALL_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError, PlatformError),
    retry_backoff=10,
    max_retries=5,
)
def install_webhooks(*, merchant_id: int, connection_id: int) -> int:
    """Create our webhooks on a store connected in one click (its callback must answer before we call it)."""
    return len(woocommerce.connection_install_webhooks(merchant_id=merchant_id, connection_id=connection_id))


@shared_task(
    name=reconcile.RECONCILE_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError, PlatformError),
    retry_backoff=30,
    max_retries=3,
)
def reconcile_connection(*, merchant_id: int, connection_id: int) -> int:
    """Store what one connected shop changed since the last run (the next beat run retries a failed one)."""
    return reconcile.connection_reconcile(merchant_id=merchant_id, connection_id=connection_id)


@shared_task(name="integrations.reconcile_all", acks_late=True, ignore_result=True)
def reconcile_all() -> int:
    """Scheduled by beat: one reconciliation task per connected shop."""
    return reconcile.reconcile_all()


@shared_task(name="integrations.sweep", acks_late=True, ignore_result=True)
def sweep() -> int:
    """Scheduled by beat: send every inbound event that is due (retries, waiting refunds, lost messages), and every
    marketing sync that is due."""
    return len(services.inbound_events_sweep()) + marketing.outbound_syncs_sweep()


@shared_task(
    name=marketing.SYNC_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=5,
)
def marketing_sync(*, merchant_id: int, connection_id: int) -> int:
    """Send a batch of a marketing connection's due syncs; go on at once while more are due, and come back for
    rows a busy tool put off briefly (longer waits are the sweeper's)."""
    result = marketing.marketing_sync_send(merchant_id=merchant_id, connection_id=connection_id)
    kwargs = {"merchant_id": merchant_id, "connection_id": connection_id}
    if result.more:
        marketing_sync.apply_async(kwargs=kwargs)
    elif result.retry_in is not None and result.retry_in <= marketing.COUNTDOWN_MAX:
        marketing_sync.apply_async(kwargs=kwargs, countdown=result.retry_in)
    return result.sent
