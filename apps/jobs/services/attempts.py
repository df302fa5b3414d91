"""Attempts: the heartbeat of a running attempt and the fence every write of a job passes.

Each claim of a job increments `Job.attempts`; that number is the attempt's fencing token. A
write on behalf of a job (an input's result, progress, the log, the end state, the rows an input
creates) first runs `job_fence` inside its transaction: a conditional UPDATE of the job row
that matches only while the job is RUNNING under this token. A worker that was paused or cut
off while its job was re-queued and claimed by another worker therefore fails that UPDATE,
raises `JobSuperseded` and writes nothing. The UPDATE also refreshes the heartbeat and, on
MariaDB, locks the job row until the transaction ends, so a takeover waits for the write in
flight and then sees a fresh heartbeat (docs/architecture.md#jobs).

While a job's body runs inside a Celery task, a daemon thread refreshes the heartbeat every
`BAGGINTAG_JOB_HEARTBEAT_SECONDS`, so one long input (a big video, a slow download) never
looks like a dead worker. The thread stops when the task ends (a `task_postrun` receiver, see
`apps/jobs/apps.py`), when the job ends, or when its token stops matching.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from apps.jobs import conf
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

_beats: dict[tuple[int, int], _Heartbeat] = {}
_beats_lock = threading.Lock()
_task_attempts: dict[str, tuple[int, int]] = {}  # Celery task id → (job id, attempt) it claimed


def job_fence(*, job: Job, **fields: Any) -> None:
    """Inside the caller's transaction: prove `job`'s attempt is still current (and refresh its
    heartbeat, plus any `fields`), else raise JobSuperseded. Call it before writing."""
    now = timezone.now()
    matched = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
        updated_at=now, **fields
    )
    if not matched:
        heartbeat_stop(job_id=job.pk, attempt=job.attempts)
        raise JobSuperseded(job.pk, job.attempts)


class _Heartbeat(threading.Thread):
    def __init__(self, job_id: int, attempt: int, interval: float, task_id: str) -> None:
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.attempt, self.interval, self.task_id = job_id, attempt, interval, task_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    alive = Job.objects.filter(
                        pk=self.job_id, status=Job.Status.RUNNING, attempts=self.attempt
                    ).update(updated_at=timezone.now())
                except Exception:  # a lost connection: try again next beat
                    logger.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
                    close_old_connections()
                    continue
                if not alive:
                    return
        finally:
            connection.close()
            with _beats_lock:
                _beats.pop((self.job_id, self.attempt), None)


def heartbeat_start(*, job: Job) -> None:
    """Refresh `job`'s heartbeat in the background while this attempt runs (Celery tasks only:
    outside a worker nobody stops it, and a test's transaction would block it)."""
    from celery import current_task

    if not current_task or current_task.request.called_directly:
        return
    beat = _Heartbeat(job.pk, job.attempts, float(conf.job_heartbeat_seconds()), str(current_task.request.id))
    with _beats_lock:
        _beats[(job.pk, job.attempts)] = beat
        _task_attempts[beat.task_id] = (job.pk, job.attempts)
    beat.start()


def task_attempt(*, task_id: str, forget: bool = False) -> tuple[int, int] | None:
    """The (job id, attempt) a Celery task claimed, if any; `forget` once the task ended."""
    with _beats_lock:
        return _task_attempts.pop(task_id, None) if forget else _task_attempts.get(task_id)


def heartbeat_stop(
    *, job_id: int | None = None, attempt: int | None = None, task_id: str | None = None
) -> None:
    """Stop the heartbeat of one attempt, of every attempt of a job, or of a task that ended."""
    with _beats_lock:
        beats = [
            beat
            for key, beat in _beats.items()
            if (task_id is not None and beat.task_id == task_id)
            or (key[0] == job_id and (attempt is None or key[1] == attempt))
        ]
    for beat in beats:
        beat.stopped.set()
