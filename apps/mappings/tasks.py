"""Celery adapters for mapping jobs (queue: default)."""

from celery import shared_task


@shared_task(name="mappings.apply_run", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def apply_run_task(*, job_id: int) -> None:
    """Adapter: apply a mapping profile chunk by chunk, resuming at its cursor."""
    from apps.mappings.services import apply

    apply.mapping_apply_run(job_id=job_id)


@shared_task(name="mappings.preview_run", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def preview_run_task(*, job_id: int) -> None:
    """Adapter: a large preview's aggregates."""
    from apps.mappings.services import preview

    preview.mapping_preview_run(job_id=job_id)
