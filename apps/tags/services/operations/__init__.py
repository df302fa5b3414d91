"""Bulk tag operations (docs/tags.md#bulk-operations), a package by step:

* `plan`: parse and check a request into a `Spec`, choose its targets;
* `apply`: apply a chunk (set-based when it can, else per item through the one writer);
* `sql`: the set-based path for items that already have a set of the kind (same results,
  kept honest by tests/tags/test_operations_paths.py);
* `decide`, `counters`: one set's decision, a chunk's counters;
* `preview`: validate and freeze a request, count and sample what it would change;
* `undo`: revert a chunk (set-based when it can, else per item);
* `ended`: end an operation whose job ended without its body (cancelled while queued, lost);
* `run`: the use cases (preview, apply as a job, undo, cancel, expire) over chunks.
"""

from apps.tags.services.operations.ended import operation_job_ended, operations_end_orphaned
from apps.tags.services.operations.run import (
    JOB_KIND,
    TASK_NAME,
    UNDOABLE_STATUSES,
    Outcome,
    Preview,
    operation_apply,
    operation_bulk,
    operation_can_undo,
    operation_cancel,
    operation_preview,
    operation_run,
    operation_target_ids,
    operation_undo,
    operations_expire,
)

__all__ = [
    "JOB_KIND",
    "TASK_NAME",
    "UNDOABLE_STATUSES",
    "Outcome",
    "Preview",
    "operation_apply",
    "operation_bulk",
    "operation_can_undo",
    "operation_cancel",
    "operation_job_ended",
    "operation_preview",
    "operation_run",
    "operation_target_ids",
    "operation_undo",
    "operations_end_orphaned",
    "operations_expire",
]
