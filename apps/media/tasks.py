"""Celery adapters for media jobs (queue: media)."""

from celery import shared_task


@shared_task(name="media.upload_bulk", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def media_upload_bulk_task(*, job_id: int) -> None:
    """Adapter: ingest the staged inputs of a bulk-upload job."""
    from apps.media import services

    services.media_upload_bulk_run(job_id=job_id)
