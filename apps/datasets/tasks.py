"""Celery adapters for dataset jobs (queue: media, as they decode and encode images)."""

from celery import shared_task

from apps.jobs.exceptions import JobSuperseded

_EXPECTED = (JobSuperseded,)


@shared_task(name="datasets.conform", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=_EXPECTED)
def conform_task(*, job_id: int) -> None:
    """Adapter: conform a dataset's failing members (docs/datasets.md#conform)."""
    from apps.datasets.services import conform

    conform.conform_run(job_id=job_id)
