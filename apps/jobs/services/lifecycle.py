"""Job state changes. Every transition of `Job.status` happens here (docs/architecture.md#jobs).

Writes made on behalf of a running attempt are fenced (`attempts.job_fence`): a worker whose
attempt is no longer current raises `JobSuperseded` instead of writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_task
from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import conf
from apps.jobs.events import job_finished_send
from apps.jobs.models import Job, JobItem
from apps.jobs.services import staging
from apps.jobs.services.attempts import heartbeat_start, heartbeat_stop, job_fence
from apps.jobs.services.dispatch import attempts_exhausted, job_send, job_send_on_commit

logger = logging.getLogger(__name__)

LOG_MAX_LINES = 200


@transaction.atomic
def job_start(
    *, kind: str, task: str, params: dict[str, Any], created_by: Any = None, total: int = 0, title: str = ""
) -> Job:
    """Create a QUEUED job and send `task(job_id=...)` after the transaction commits.

    A send that fails (the broker is down) does not fail the caller: the row is the truth and
    the sweeper sends it later. Storage keys in `params["staged"]` become the job's files.
    """
    job = Job(
        kind=kind,
        params={**params, "task": task, **({"title": title} if title else {})},
        progress_total=total,
        holds_files=bool(params.get("staged")),
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    job.full_clean()
    job.save()
    job_send_on_commit(job)
    return job


def _recheck_later(job_id: int) -> None:
    """A delivery found the job RUNNING with a fresh heartbeat: either a duplicate message or
    the redelivery of a message whose worker just died (its heartbeat has not gone stale yet).
    Look once more when it would be stale; a second look that still finds it alive drops it."""
    request = current_task.request if current_task else None
    if request is None or request.called_directly or (request.retries or 0) > 0:
        return
    job = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).only("pk", "params", "updated_at").first()
    if job is None:
        return
    age = (timezone.now() - job.updated_at).total_seconds()
    countdown = max(1.0, conf.job_stale_seconds() - age + 1)
    job_send(job_id=job_id, task=str(job.params["task"]), countdown=countdown, recheck=True)


def job_claim(*, job_id: int) -> Job | None:
    """Start a new attempt of the job for this delivery, or None when there is nothing to do.

    Claims a QUEUED job, and takes over a RUNNING one whose heartbeat is older than
    `BAGGINTAG_JOB_STALE_SECONDS` (its worker died or froze; a frozen one is fenced off). The
    returned job's `attempts` is this attempt's token. A job claimed too often fails instead.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=conf.job_stale_seconds())
    claimable = Job.objects.filter(pk=job_id, cancel_requested=False).filter(
        Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, updated_at__lt=stale)
    )
    row = Job.objects.filter(pk=job_id).only("pk", "kind", "attempts", "params").first()
    exhausted = (
        row is not None
        and attempts_exhausted(row)
        and claimable.filter(attempts=row.attempts).update(
            status=Job.Status.FAILED,
            finished_at=now,
            updated_at=now,
            error_code="jobs.worker_lost",
            error_message="The worker running this job stopped too many times; retry it to resume.",
        )
    )
    if exhausted and row is not None:
        job_finished_send(job_id=job_id, kind=row.kind, status=Job.Status.FAILED)
    claimed = (
        0
        if exhausted
        else claimable.update(
            status=Job.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
            updated_at=now,
        )
    )
    if not claimed:
        # Cancelled while queued (or while its worker was dead): it ends here, not in a worker.
        ended = (
            Job.objects.filter(pk=job_id, cancel_requested=True)
            .filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, updated_at__lt=stale))
            .update(status=Job.Status.CANCELLED, finished_at=now, updated_at=now)
        )
        if ended and row is not None:
            job_finished_send(job_id=job_id, kind=row.kind, status=Job.Status.CANCELLED)
        if ended or Job.objects.filter(pk=job_id, status=Job.Status.CANCELLED, holds_files=True).exists():
            staging.staged_delete(job_id=job_id)
        else:
            _recheck_later(job_id)
        return None
    job = Job.objects.get(pk=job_id)
    heartbeat_start(job=job)
    return job


def job_progress(
    *, job: Job, done: int | None = None, total: int | None = None, result: dict[str, Any] | None = None
) -> Job:
    """Record progress (fenced; also a heartbeat); refreshes `cancel_requested`.

    `result` replaces the running job's result (e.g. a position beside a count of frames).
    """
    fields: dict[str, Any] = {}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    if result is not None:
        fields["result"] = result
    job_fence(job=job, **fields)
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


# What recording an outcome reads of the Job row (not params: a job's inputs can be large).
_COUNTED = ("pk", "counts", "progress_done", "cancel_requested", "updated_at")


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
    """Record the outcome of input `seq` once (fenced); counts move with it, and progress too
    unless the job measures progress otherwise (`counts_progress=False`, e.g. position in a
    video). Call it inside the transaction that wrote the input's rows to make both one step."""
    job_fence(job=job)
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
        locked = Job.objects.select_for_update().only(*_COUNTED).get(pk=job.pk)
        counts = dict(locked.counts)
        counts[status] = counts.get(status, 0) + 1
        locked.counts = counts
        if counts_progress:
            locked.progress_done = sum(counts.values())
        locked.save(update_fields=["counts", "progress_done", "updated_at"])
        job.counts, job.progress_done = locked.counts, locked.progress_done
        job.cancel_requested = locked.cancel_requested
    return item


@dataclass(frozen=True)
class ItemOutcome:
    """One input's outcome for `job_items_record`."""

    seq: int
    input: str
    status: str
    object_id: int | None = None
    error: DomainError | None = None


@transaction.atomic
def job_items_record(*, job: Job, outcomes: list[ItemOutcome]) -> list[JobItem]:
    """`job_item_record` for many inputs in one step: one fence, one read of the inputs already
    recorded, one insert and one counts update, however many inputs (bulk jobs record a batch in
    the transaction that wrote its rows). Inputs already recorded keep their first outcome."""
    job_fence(job=job)
    if not outcomes:
        return []
    seqs = [outcome.seq for outcome in outcomes]
    known = set(JobItem.objects.filter(job=job, seq__in=seqs).values_list("seq", flat=True))
    rows = [
        JobItem(
            job=job,
            seq=o.seq,
            input=o.input[:500],
            status=o.status,
            object_id=o.object_id,
            error_code=o.error.code if o.error else "",
            error_message=o.error.message if o.error else "",
        )
        for o in outcomes
        if o.seq not in known
    ]
    if len({row.seq for row in rows}) != len(rows):
        raise ValueError("job_items_record: the same input twice in one batch")
    JobItem.objects.bulk_create(rows)
    if rows:
        locked = Job.objects.select_for_update().only(*_COUNTED).get(pk=job.pk)
        counts = dict(locked.counts)
        for row in rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        locked.counts = counts
        locked.progress_done = sum(counts.values())
        locked.save(update_fields=["counts", "progress_done", "updated_at"])
        job.counts, job.progress_done = locked.counts, locked.progress_done
        job.cancel_requested = locked.cancel_requested
    return rows


def job_done_seqs(*, job: Job) -> set[int]:
    """Inputs already recorded: a resumed job skips them."""
    return set(JobItem.objects.filter(job=job).values_list("seq", flat=True))


def _log_line(job_id: int, line: str) -> None:
    locked = Job.objects.select_for_update().get(pk=job_id)
    stamp = timezone.now().strftime("%H:%M:%S")
    locked.log = [*locked.log, f"{stamp} {line}"][-LOG_MAX_LINES:]
    locked.save(update_fields=["log", "updated_at"])


def job_log(*, job: Job, line: str) -> None:
    """Append a line to the job's log, keeping the last LOG_MAX_LINES (fenced while running)."""
    with transaction.atomic():
        if job.status == Job.Status.RUNNING:
            job_fence(job=job)
        _log_line(job.pk, line)


def _finish(job: Job, status: str, **fields: Any) -> Job:
    now = timezone.now()
    with transaction.atomic():
        job_fence(job=job)
        Job.objects.filter(pk=job.pk).update(status=status, finished_at=now, updated_at=now, **fields)
        job_finished_send(job_id=job.pk, kind=job.kind, status=status)
    heartbeat_stop(job_id=job.pk)
    job.refresh_from_db()
    if job.status in (Job.Status.SUCCEEDED, Job.Status.CANCELLED):
        staging.staged_delete(job_id=job.pk)
    return job


def job_finish(*, job: Job, result: dict[str, Any] | None = None) -> Job:
    """RUNNING → SUCCEEDED, CANCELLED if a cancel was asked for meanwhile, or FAILED when every
    input failed (a job with some failures succeeds; its `outcome` says how many failed)."""
    if job.status != Job.Status.RUNNING:
        return job  # finished already: a finished job is never rewritten
    job.refresh_from_db(fields=["cancel_requested", "counts"])
    if job.cancel_requested:
        return _finish(job, Job.Status.CANCELLED, result=result or {})
    failed = job.counts.get("failed", 0)
    if failed and failed == sum(job.counts.values()):
        return _finish(
            job,
            Job.Status.FAILED,
            result=result or {},
            error_code="jobs.all_inputs_failed",
            error_message=f"All {failed} input{'s' if failed != 1 else ''} failed; each result says why.",
        )
    return _finish(job, Job.Status.SUCCEEDED, result=result or {})


def job_fail(*, job: Job, code: str, message: str) -> Job:
    """RUNNING → FAILED with the error recorded on the row."""
    if job.status != Job.Status.RUNNING:
        return job
    return _finish(job, Job.Status.FAILED, error_code=code[:64], error_message=message)


def job_release(*, job: Job) -> Job:
    """RUNNING → QUEUED, for a retry after a transient failure; sent again at once."""
    with transaction.atomic():
        job_fence(job=job, status=Job.Status.QUEUED, sent_at=None)
        job_send_on_commit(job)
    heartbeat_stop(job_id=job.pk)
    job.refresh_from_db()
    return job


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """Cancel a queued job now (its staged files go at once); ask a running one to stop after
    its current input."""
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
        transaction.on_commit(lambda: staging.staged_delete(job_id=locked.pk))
        job_finished_send(job_id=locked.pk, kind=locked.kind, status=Job.Status.CANCELLED)
    locked.save(update_fields=["cancel_requested", "status", "finished_at", "updated_at"])
    return locked


@transaction.atomic
def job_retry(*, job: Job, actor: Any = None) -> Job:
    """FAILED → QUEUED: run the job again from its checkpoint. Inputs that succeeded stay done;
    failed inputs are tried again. Refused once a failed job's staged files were swept."""
    locked = Job.objects.select_for_update().get(pk=job.pk)
    if locked.status != Job.Status.FAILED:
        raise ConflictError(
            f"Only failed jobs can be retried; job {locked.pk} is {locked.status}.",
            code="jobs.not_failed",
            details={"status": locked.status},
        )
    if locked.params.get("staged") and not locked.holds_files:
        raise ConflictError(
            f"The uploaded files of job {locked.pk} were removed "
            f"{conf.job_keep_failed_files_hours()} hours after it failed; upload them again.",
            code="jobs.inputs_removed",
        )
    dropped = JobItem.objects.filter(job=locked, status=JobItem.Status.FAILED).delete()[0]
    rows = JobItem.objects.filter(job=locked).values("status").annotate(n=Count("pk"))
    counts = {row["status"]: row["n"] for row in rows}
    counted = sum(locked.counts.values()) == locked.progress_done
    locked.counts = counts
    if counted:  # progress counted inputs (not e.g. a position in a video)
        locked.progress_done = sum(counts.values())
    locked.status = Job.Status.QUEUED
    locked.error_code, locked.error_message = "", ""
    locked.finished_at = None
    locked.sent_at = None
    locked.cancel_requested = False
    locked.params = {**locked.params, "attempts_before_retry": locked.attempts}
    who = getattr(actor, "username", "") or "someone"
    locked.log = [*locked.log, f"{timezone.now():%H:%M:%S} Retried by {who}; {dropped} failed inputs again."][
        -LOG_MAX_LINES:
    ]
    locked.save()
    job_send_on_commit(locked)
    return locked
