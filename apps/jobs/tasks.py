"""Periodic job maintenance (beat) and the hooks every job task runs through."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="jobs.requeue_stale")
def job_sweep_task() -> dict[str, list[int]]:
    """Adapter: the job sweeper (stale attempts, owed sends, staged and spool files). The name
    is kept from when it only re-queued stale jobs, so schedules and queued messages still route."""
    from apps.jobs import services

    return services.job_sweep()


def on_task_failure(
    sender: Any = None, task_id: str = "", exception: BaseException | None = None, **kwargs: Any
) -> None:
    """A job task raised: a superseded attempt ends quietly; any other error fails the job its
    attempt still owns (the error is logged; retry resumes from the checkpoint)."""
    from apps.jobs import services
    from apps.jobs.exceptions import JobSuperseded
    from apps.jobs.models import Job

    if isinstance(exception, JobSuperseded):
        logger.info("%s", exception)
        return
    claimed = services.task_attempt(task_id=task_id)
    if claimed is None:
        return
    job_id, attempt = claimed
    for job in Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=attempt):
        with contextlib.suppress(JobSuperseded):  # another attempt took over meanwhile
            services.job_fail(
                job=job,
                code="jobs.internal_error",
                message="An internal error stopped this job; it was logged. Retry resumes where it stopped.",
            )


def on_task_postrun(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    """A task ended: stop the heartbeats of the attempts it claimed."""
    from apps.jobs import services

    services.heartbeat_stop(task_id=task_id)
    services.task_attempt(task_id=task_id, forget=True)


def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """A worker started: sweep once (jobs its predecessor left running, owed sends, spool files)."""
    from apps.jobs import services

    try:
        services.job_sweep()
    except Exception:  # never keep a worker from starting
        logger.warning("the start-up job sweep failed", exc_info=True)
