from celery import shared_task

from tracking import clicks, partitions


@shared_task(name="tracking.ingest_clicks", acks_late=True, ignore_result=True)
def ingest_clicks() -> int:
    """Drain the click buffer into PostgreSQL (scheduled every few seconds by beat)."""
    return clicks.clicks_ingest()


@shared_task(name="tracking.click_partitions", acks_late=True, ignore_result=True)
def click_partitions() -> int:
    """Make the click table's month partitions ahead of time (scheduled every few hours by beat)."""
    return len(partitions.click_partitions_ensure())
