"""Helpers of the marketing tools' tests: a connection whose calls go to the local fake tool (pytest-httpserver), a
participant who joins through the real service, and the worker's pass over the due syncs."""

from __future__ import annotations

from django.db import transaction

from integrations.models import OutboundSync
from integrations.services import connection_create, marketing_sync_send
from tracking.services import participant_upsert


def marketing_connection(merchant, provider: str, httpserver, *, account: str = "acct-1", secret: str = "pk_secret"):
    connection, _created = connection_create(
        merchant=merchant,
        provider=provider,
        account=account,
        secret=secret,
        base_url=httpserver.url_for("/").rstrip("/"),
    )
    return connection


def joins(program, *, email: str, name: str = "Anna Kowalska", consent: bool = True, external_id: str | None = None):
    """A customer joins `program` (as POST /api/v1/participants does) and the transaction commits."""
    with transaction.atomic():
        participant, code, _created = participant_upsert(
            merchant=program.merchant,
            livemode=True,
            program=program,
            email=email,
            name=name,
            external_id=external_id,
            marketing_consent=consent,
        )
    return participant, code


def sync_all(connection) -> list:
    """What the integrations worker does for the connection until nothing is due (each pass is one task run)."""
    results = []
    while True:
        result = marketing_sync_send(merchant_id=connection.merchant_id, connection_id=connection.pk)
        results.append(result)
        if not result.more:
            return results


def syncs(connection, **filters):
    return list(OutboundSync.objects.for_merchant(connection.merchant_id).filter(connection=connection, **filters))
