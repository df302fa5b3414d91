"""Operations whose job ended without its body ending them (docs/tags.md#operations-and-undo).

A job can end without running its body: cancelled through the jobs app or API while still
queued, or failed by the jobs app after losing its worker too often. Its operation (a bulk edit,
an undo or redo, a mapping apply) would then stay queued or running for ever; jobs'
`job_finished` (connected in TagsConfig.ready) ends it here, and the periodic
`tags.rebuild_stale` ends any whose event was lost.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.jobs.models import Job
from apps.tags.models import Operation

OPEN_STATUSES = (Operation.Status.QUEUED, Operation.Status.RUNNING)
JOB_ENDED_ERROR = (
    "Its job failed before the operation finished (see the job: usually its worker was lost too "
    "often); what it wrote stays and can be undone, or retry the job to resume where it stopped."
)


def operation_written(operation: Operation) -> bool:
    """Whether an operation that stopped early wrote some of its work (then it is partially
    applied and undoable, not failed): a chunk (each commits with the cursor: bulk edits, undos,
    redos, mapping applies), or the library side effects applied before the first chunk (a
    library rename's alias and deprecation, or an undo's reversal of them)."""
    return operation.resume_cursor > 0 or bool(operation.params.get("effects"))


def operation_job_ended(*, job_id: int, status: str) -> Operation | None:
    """`job_finished`: end the operation job `job_id` left queued or running, whatever its kind.
    Cancelled (the jobs app or API ended it while queued): `cancelled`; failed without its body
    (a lost worker): `partially_applied` when some of its work was written, else `failed`. An
    operation its job body ended itself, or a job that succeeded, is left as it is; idempotent.
    Returns the operation it ended. Effective tags its chunks left pending are settled by
    `tags.rebuild_stale` (docs/tags.md#deferred-effective-refresh)."""
    if status not in (Job.Status.CANCELLED, Job.Status.FAILED):
        return None
    with transaction.atomic():
        operation = (
            Operation.objects.select_for_update().filter(job_id=job_id, status__in=OPEN_STATUSES).first()
        )
        if operation is None:
            return None
        if status == Job.Status.CANCELLED:
            operation.status, operation.error = Operation.Status.CANCELLED, ""
        else:
            written = operation_written(operation)
            operation.status = Operation.Status.PARTIAL if written else Operation.Status.FAILED
            operation.error = JOB_ENDED_ERROR
        operation.updated_at = timezone.now()
        operation.save(update_fields=["status", "error", "updated_at"])
        return operation


def operations_end_orphaned() -> int:
    """The periodic fallback of `operation_job_ended` (with `tags.rebuild_stale`): end every
    operation still queued or running whose job failed or was cancelled (the process that ended
    the job stopped before sending the event). Returns how many it ended."""
    orphaned = Operation.objects.filter(
        status__in=OPEN_STATUSES, job__status__in=(Job.Status.FAILED, Job.Status.CANCELLED)
    ).values_list("job_id", "job__status")
    return sum(
        operation_job_ended(job_id=int(job_id), status=str(status)) is not None
        for job_id, status in list(orphaned)
    )
