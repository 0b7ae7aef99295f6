from celery import shared_task

from analytics.services import click_retention_run, rollup_incremental


# A run takes seconds in steady state; the first one after a deployment onto years of data may take minutes (better:
# run `manage.py rollup_stats --since ...` once, which commits day chunk by day chunk). Overlapping runs return at
# once (an advisory lock), so the limits only guard against a stuck run.
@shared_task(name="analytics.rollup", acks_late=True, ignore_result=True, soft_time_limit=1800, time_limit=1900)
def rollup() -> int:
    """Recount the program days touched since the last run (scheduled every minute by beat)."""
    return rollup_incremental().keys


@shared_task(name="analytics.click_retention", acks_late=True, ignore_result=True, time_limit=1900)
def click_retention() -> int:
    """Drop the raw clicks of months past CLICK_RETENTION_MONTHS that the rollups have counted (daily, by beat)."""
    return len(click_retention_run().dropped)
