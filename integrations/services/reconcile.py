"""Reconciliation: a beat job per connection asks the platform for the orders and refunds changed since the last
run, so that a webhook the platform gave up on (Shopify stops after 8 tries over 4 hours) is not lost. What it finds
is stored like a webhook, under the same event ids (`inbound_event_once`): an event the webhook brought already is
not stored or processed again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.http import PlatformError
from integrations.models import Connection, InboundEvent
from integrations.providers import provider_for
from integrations.providers.base import Inbound
from integrations.services.connections import connection_record_error
from integrations.services.inbound import inbound_event_store
from referral_saas.celery import enqueue_on_commit

RECONCILE_TASK = "integrations.reconcile"
# Each run looks back this much before where the last one ended: the platform's clocks and indexes lag a little.
OVERLAP = timedelta(minutes=10)


def connections_due_for_reconcile() -> list[tuple[int, int]]:
    """(merchant id, connection id) of every connected shop with credentials that syncs by reconciliation.
    Cross-tenant on purpose (beat)."""
    rows = Connection.all_merchants.filter(status=Connection.Status.ACTIVE).order_by("pk")
    return [(c.merchant_id, c.pk) for c in rows if c.syncs("reconcile") and c.credentials]


def reconcile_all() -> int:
    due = connections_due_for_reconcile()
    with transaction.atomic():
        for merchant_id, pk in due:
            enqueue_on_commit(RECONCILE_TASK, merchant_id=merchant_id, connection_id=pk)
    return len(due)


def connection_reconcile(*, merchant_id: int, connection_id: int) -> int:
    """Fetch what changed since the last run and store it as events. Returns how many new events were stored. The
    cursor moves on only after a complete run, so a failed one is repeated from the same point."""
    connection = (
        Connection.objects.for_merchant(merchant_id).select_related("merchant").filter(pk=connection_id).first()
    )
    if connection is None or not connection.is_active:
        return 0
    started = timezone.now()
    first_run = started - timedelta(hours=settings.INTEGRATIONS_RECONCILE_START_HOURS)
    since = (connection.synced_until or first_run) - OVERLAP
    stored = 0
    try:
        for fetched in provider_for(connection.provider).reconcile(connection=connection, since=since):
            _event, created = inbound_event_store(
                connection=connection,
                inbound=Inbound(fetched.event_id, fetched.topic, fetched.order_ref),
                body=fetched.body,
                source=InboundEvent.Source.RECONCILE,
            )
            stored += created
    except PlatformError as exc:
        connection_record_error(connection=connection, error=f"reconciliation: {exc}")
        raise
    Connection.objects.for_merchant(merchant_id).filter(pk=connection_id).update(synced_until=started)
    return stored
