from celery import shared_task

from tracking import clicks


@shared_task(name="tracking.ingest_clicks", acks_late=True, ignore_result=True)
def ingest_clicks() -> int:
    """Drain the click buffer into PostgreSQL (scheduled every few seconds by beat)."""
    return clicks.clicks_ingest()
