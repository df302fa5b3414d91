"""Periodic job maintenance (beat)."""

from celery import shared_task


@shared_task(name="jobs.requeue_stale")
def job_requeue_stale_task() -> list[int]:
    """Adapter: re-queue jobs whose worker died."""
    from apps.jobs import services

    return services.job_requeue_stale()
