"""Job state changes. Every transition of `Job.status` happens here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import conf
from apps.jobs.models import Job, JobItem

LOG_MAX_LINES = 200


def _enqueue_on_commit(job: Job) -> None:
    task_name = job.params["task"]
    job_id = job.pk
    transaction.on_commit(lambda: current_app.send_task(task_name, kwargs={"job_id": job_id}))


@transaction.atomic
def job_start(
    *, kind: str, task: str, params: dict[str, Any], created_by: Any = None, total: int = 0, title: str = ""
) -> Job:
    """Create a QUEUED job and send `task(job_id=...)` after the transaction commits."""
    job = Job(
        kind=kind,
        params={**params, "task": task, **({"title": title} if title else {})},
        progress_total=total,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    job.full_clean()
    job.save()
    _enqueue_on_commit(job)
    return job


def job_claim(*, job_id: int) -> Job | None:
    """Move a QUEUED job to RUNNING for this delivery; None when another delivery owns it."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, cancel_requested=False).update(
        status=Job.Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        updated_at=now,
    )
    if not claimed:
        # A job cancelled while queued ends here, not in the worker.
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, cancel_requested=True).update(
            status=Job.Status.CANCELLED,
            finished_at=now,
            updated_at=now,
        )
        return None
    return Job.objects.get(pk=job_id)


def job_progress(
    *, job: Job, done: int | None = None, total: int | None = None, result: dict[str, Any] | None = None
) -> Job:
    """Record progress (also the heartbeat the sweeper reads); refreshes `cancel_requested`.

    `result` replaces the running job's result (e.g. a position beside a count of frames).
    """
    fields: dict[str, Any] = {"updated_at": timezone.now()}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    if result is not None:
        fields["result"] = result
    Job.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db(
        fields=[
            "progress_done",
            "progress_total",
            "cancel_requested",
            "status",
            "updated_at",
            "counts",
            "result",
        ]
    )
    return job


@transaction.atomic
def job_item_record(
    *,
    job: Job,
    seq: int,
    input: str,
    status: str,
    object_id: int | None = None,
    error: DomainError | None = None,
    counts_progress: bool = True,
) -> JobItem:
    """Record the outcome of input `seq` once; counts move with it, and progress too unless
    the job measures progress otherwise (`counts_progress=False`, e.g. position in a video)."""
    item, created = JobItem.objects.get_or_create(
        job=job,
        seq=seq,
        defaults={
            "input": input[:500],
            "status": status,
            "object_id": object_id,
            "error_code": error.code if error else "",
            "error_message": error.message if error else "",
        },
    )
    if created:
        locked = Job.objects.select_for_update().get(pk=job.pk)
        counts = dict(locked.counts)
        counts[status] = counts.get(status, 0) + 1
        locked.counts = counts
        if counts_progress:
            locked.progress_done = sum(counts.values())
        locked.save(update_fields=["counts", "progress_done", "updated_at"])
        job.counts, job.progress_done = locked.counts, locked.progress_done
        job.cancel_requested = locked.cancel_requested
    return item


def job_done_seqs(*, job: Job) -> set[int]:
    """Inputs already recorded: a resumed job skips them."""
    return set(JobItem.objects.filter(job=job).values_list("seq", flat=True))


def job_log(*, job: Job, line: str) -> None:
    """Append a line to the job's log, keeping the last LOG_MAX_LINES."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        stamp = timezone.now().strftime("%H:%M:%S")
        locked.log = [*locked.log, f"{stamp} {line}"][-LOG_MAX_LINES:]
        locked.save(update_fields=["log", "updated_at"])


def _finish(job: Job, status: str, **fields: Any) -> Job:
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=status, finished_at=now, updated_at=now, **fields
    )
    job.refresh_from_db()
    return job


def job_finish(*, job: Job, result: dict[str, Any] | None = None) -> Job:
    """RUNNING → SUCCEEDED (or CANCELLED if a cancel was asked for meanwhile)."""
    job.refresh_from_db(fields=["cancel_requested"])
    status = Job.Status.CANCELLED if job.cancel_requested else Job.Status.SUCCEEDED
    return _finish(job, status, result=result or {})


def job_fail(*, job: Job, code: str, message: str) -> Job:
    """RUNNING → FAILED with the error recorded on the row."""
    return _finish(job, Job.Status.FAILED, error_code=code[:64], error_message=message)


def job_release(*, job: Job) -> Job:
    """RUNNING → QUEUED, for a retry after a transient failure."""
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.QUEUED, updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a queued job now; ask a running one to stop after its current input."""
    locked = Job.objects.select_for_update().get(pk=job.pk)
    if locked.is_finished:
        raise ConflictError(
            f"Job {locked.pk} has already {locked.status}.",
            code="jobs.finished",
            details={"status": locked.status},
        )
    now = timezone.now()
    locked.cancel_requested = True
    if locked.status == Job.Status.QUEUED:
        locked.status = Job.Status.CANCELLED
        locked.finished_at = now
    locked.save(update_fields=["cancel_requested", "status", "finished_at", "updated_at"])
    return locked


def job_requeue_stale(*, now: Any = None) -> list[int]:
    """Re-queue RUNNING jobs whose heartbeat stopped (their worker died) and send them again."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.job_stale_seconds())
    stale: Iterable[Job] = Job.objects.filter(status=Job.Status.RUNNING, updated_at__lt=cutoff)
    requeued = []
    for job in stale:
        with transaction.atomic():
            if Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, updated_at__lt=cutoff).update(
                status=Job.Status.QUEUED, updated_at=now
            ):
                _enqueue_on_commit(job)
                requeued.append(job.pk)
    return requeued
