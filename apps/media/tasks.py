"""Celery adapters for media jobs (queue: media)."""

from celery import shared_task

from apps.jobs.exceptions import JobSuperseded

# A superseded attempt (its job was taken over) is expected: logged in one line, no traceback.
_EXPECTED = (JobSuperseded,)


@shared_task(name="media.upload_bulk", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=_EXPECTED)
def media_upload_bulk_task(*, job_id: int) -> None:
    """Adapter: ingest the staged inputs of a bulk-upload job."""
    from apps.media import services

    services.media_upload_bulk_run(job_id=job_id)


@shared_task(
    name="media.frames_extract", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=_EXPECTED
)
def media_frames_extract_task(*, job_id: int) -> None:
    """Adapter: capture the frames a job asks for."""
    from apps.media.services import frames

    frames.media_frames_extract_run(job_id=job_id)


@shared_task(
    name="media.transform_bulk", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=_EXPECTED
)
def media_transform_bulk_task(*, job_id: int) -> None:
    """Adapter: apply one recipe to many items."""
    from apps.media.services import transforms

    transforms.media_transform_bulk_run(job_id=job_id)
