"""The event the jobs app sends, so higher apps react to a job's end without the jobs app
knowing them (docs/architecture.md#jobs).

* `job_finished(job_id, kind, status)`: a job reached SUCCEEDED, FAILED or CANCELLED, however it
  got there (its worker finished or failed it, a cancel ended it while queued, the sweeper gave
  up on it). Sent **after the change commits**, so receivers read the finished row; a job
  retried and finished again sends it again. Receivers must be idempotent and quick (they run in
  the process that ended the job: a worker, or a web request that cancelled it); one that raises
  is logged and does not disturb the others. A process that stops between the commit and the
  send loses the event: receivers that must not miss one keep a periodic fallback (as intake's
  `intake.collect_finished` does).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

job_finished = Signal()


def _send(job_id: int, kind: str, status: str) -> None:
    from apps.jobs.models import Job

    for receiver, result in job_finished.send_robust(sender=Job, job_id=job_id, kind=kind, status=status):
        if isinstance(result, Exception):
            logger.error(
                "job_finished receiver %r failed for job %s",
                receiver,
                job_id,
                exc_info=(type(result), result, result.__traceback__),
            )


def job_finished_send(*, job_id: int, kind: str, status: str) -> None:
    """Send `job_finished` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(job_id, kind, status))
