"""Celery adapters for tag jobs (queue: default)."""

from celery import shared_task


@shared_task(name="tags.effective_rebuild", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def effective_rebuild_task(*, job_id: int) -> None:
    """Adapter: rebuild the effective tags of stale items."""
    from apps.tags.services import rules

    rules.effective_rebuild_run(job_id=job_id)
