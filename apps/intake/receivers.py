"""When a media job task ends in this worker, collect the intake entries waiting for it
(docs/intake.md#processing). Celery's own signal: the media app knows nothing of intake.
When a taggers job ends (the jobs app's `job_finished` event), settle the entries whose
on-arrival tagging it belongs to (docs/intake.md#on-arrival)."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_postrun
from django.db.models.signals import post_delete

logger = logging.getLogger(__name__)

MEDIA_JOB_TASKS = ("media.upload_bulk", "media.frames_extract")


def media_job_ended(sender: Any = None, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    """A media job task returned (or raised): its job may have ended; collect its entries."""
    if getattr(sender, "name", "") not in MEDIA_JOB_TASKS or not kwargs or "job_id" not in kwargs:
        return
    from apps.intake import services

    try:
        services.intake_collect_for_job(job_id=int(kwargs["job_id"]))
    except Exception:  # the periodic collect (intake.collect_finished) tries again
        logger.exception("collecting the intake entries of job %s failed", kwargs.get("job_id"))


def tagging_job_ended(sender: Any = None, job_id: int = 0, kind: str = "", **_: Any) -> None:
    """A job ended (sent after its commit): if it is an entry's on-arrival scheme run or scoring
    job, the entry may move to `tagged`."""
    from apps.intake import services

    try:
        services.intake_tagging_settle_for_job(job_id=int(job_id), kind=kind)
    except Exception:  # the periodic collect (intake.collect_finished) tries again
        logger.exception("settling the intake entries of job %s failed", job_id)


def entry_deleted(sender: Any = None, instance: Any = None, **_: Any) -> None:
    """An entry went (deleted, or with its dataset or subset): its kept zip goes after commit."""
    from apps.intake import services

    if instance is not None and instance.archive_key:
        services.intake_archive_forget(key=instance.archive_key)


def connect() -> None:
    from apps.intake.models import IntakeEntry
    from apps.jobs.events import job_finished

    task_postrun.connect(media_job_ended, weak=False, dispatch_uid="intake.media_job_ended")
    job_finished.connect(tagging_job_ended, weak=False, dispatch_uid="intake.tagging_job_ended")
    post_delete.connect(entry_deleted, sender=IntakeEntry, weak=False, dispatch_uid="intake.entry_deleted")
