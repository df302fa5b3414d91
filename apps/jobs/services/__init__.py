"""Job services: state changes (`lifecycle`), attempts and their fence (`attempts`), sending and
the sweeper (`dispatch`), staged files (`staging`). Callers import the names below."""

from celery import current_app  # what sends tasks (tests replace its send_task)

from apps.jobs.services.attempts import heartbeat_stop, job_fence, task_attempt
from apps.jobs.services.dispatch import broker_job_ids, job_requeue_stale, job_send, job_sweep
from apps.jobs.services.lifecycle import (
    LOG_MAX_LINES,
    ItemOutcome,
    job_cancel,
    job_claim,
    job_done_seqs,
    job_fail,
    job_finish,
    job_item_record,
    job_items_record,
    job_log,
    job_progress,
    job_release,
    job_retry,
    job_start,
)
from apps.jobs.services.staging import staged_delete, staged_sweep

__all__ = [
    "LOG_MAX_LINES",
    "ItemOutcome",
    "broker_job_ids",
    "current_app",
    "heartbeat_stop",
    "job_cancel",
    "job_claim",
    "job_done_seqs",
    "job_fail",
    "job_fence",
    "job_finish",
    "job_item_record",
    "job_items_record",
    "job_log",
    "job_progress",
    "job_release",
    "job_requeue_stale",
    "job_retry",
    "job_send",
    "job_start",
    "job_sweep",
    "staged_delete",
    "staged_sweep",
    "task_attempt",
]
