from celery import shared_task

from analytics.services import rollup_incremental


@shared_task(name="analytics.rollup", acks_late=True, ignore_result=True)
def rollup() -> int:
    """Recount the program days touched since the last run (scheduled every minute by beat)."""
    return rollup_incremental().keys
