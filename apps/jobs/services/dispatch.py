"""Sending jobs to the broker, and the sweeper that makes the job row the truth.

A job's message is only a nudge: `job_send` records when the broker accepted it (`sent_at`), a
failed send leaves `sent_at` empty and never fails the request, and `job_sweep` (beat, every
30 s, and at worker start) sends again what is owed (docs/operations.md#failure-handling):

* RUNNING jobs whose heartbeat is stale (their worker died or froze) go back to QUEUED and are
  sent again; after `BAGGINTAG_JOB_MAX_ATTEMPTS` claims they fail instead (retry is possible);
* QUEUED jobs never sent, or whose message the broker no longer holds (Redis restarted or was
  flushed), are sent again;
* staged files of finished jobs are removed (of failed ones after the retry window);
* stale spool files of dead processes are removed (`apps/core/spool.py`).
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from apps.core import spool
from apps.jobs import conf
from apps.jobs.events import job_finished_send
from apps.jobs.models import Job
from apps.jobs.services import staging

logger = logging.getLogger(__name__)


def job_send(*, job_id: int, task: str, countdown: float | None = None, recheck: bool = False) -> bool:
    """Hand `task(job_id=…)` to the broker; record `sent_at` on success. Never raises: a send
    that fails is logged and owed, and the sweeper sends it later."""
    options: dict[str, Any] = {}
    if countdown is not None:
        options["countdown"] = countdown
    if recheck:
        options["retries"] = 1  # marks a re-check (`job_claim` re-checks a live job only once)
    try:
        current_app.send_task(task, kwargs={"job_id": job_id}, **options)
    except Exception as exc:
        logger.warning("job %s: could not send %s to the broker (%s); the sweeper retries", job_id, task, exc)
        return False
    # A plain UPDATE: `updated_at` is the heartbeat and must not move here.
    Job.objects.filter(pk=job_id).update(sent_at=timezone.now())
    return True


def job_send_on_commit(job: Job) -> None:
    """Send `job` once the current transaction commits (no worker sees an uncommitted row)."""
    task, job_id = str(job.params["task"]), job.pk
    transaction.on_commit(lambda: job_send(job_id=job_id, task=task))


def _queue_names() -> set[str]:
    names = {str(current_app.conf.task_default_queue)}
    routes = current_app.conf.task_routes or {}
    if isinstance(routes, dict):
        names |= {
            str(route["queue"]) for route in routes.values() if isinstance(route, dict) and "queue" in route
        }
    return names


def _job_id_of(payload: Any) -> int | None:
    try:
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _, kwargs, _ = json.loads(body)
        return int(kwargs["job_id"])
    except (KeyError, TypeError, ValueError):
        return None


def broker_job_ids() -> set[int] | None:
    """Ids of the jobs whose messages the broker holds (waiting or delivered but unacknowledged),
    or None when the broker cannot be inspected (only Redis can) or is unreachable."""
    try:
        with current_app.connection_for_read() as conn:
            if conn.transport.driver_type != "redis":
                return None
            channel: Any = conn.default_channel  # kombu's Redis channel
            client = channel.client
            prefix = getattr(channel, "global_keyprefix", "") or ""
            raw: list[Any] = []
            for queue in _queue_names():
                for priority in channel.priority_steps:
                    raw.extend(client.lrange(prefix + channel._q_for_pri(queue, priority), 0, -1))
            unacked = [json.loads(value)[0] for value in client.hvals(prefix + channel.unacked_key)]
    except Exception as exc:
        logger.warning("could not inspect the broker (%s)", exc)
        return None
    payloads = [json.loads(value) for value in raw] + unacked
    return {job_id for job_id in map(_job_id_of, payloads) if job_id is not None}


def attempts_exhausted(job: Job) -> bool:
    """Claimed `BAGGINTAG_JOB_MAX_ATTEMPTS` times since it was created or last retried."""
    return job.attempts - int(job.params.get("attempts_before_retry", 0)) >= conf.job_max_attempts()


def _requeue_stale(now: Any) -> list[int]:
    cutoff = now - timedelta(seconds=conf.job_stale_seconds())
    requeued = []
    for job in Job.objects.filter(status=Job.Status.RUNNING, updated_at__lt=cutoff).only(
        "pk", "kind", "attempts", "params"
    ):
        stale = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, updated_at__lt=cutoff)
        if attempts_exhausted(job):
            if stale.update(
                status=Job.Status.FAILED,
                finished_at=now,
                updated_at=now,
                error_code="jobs.worker_lost",
                error_message=f"The worker running this job stopped {job.attempts} times; retry it "
                "to resume where it stopped.",
            ):
                job_finished_send(job_id=job.pk, kind=job.kind, status=Job.Status.FAILED)
            continue
        if stale.update(status=Job.Status.QUEUED, sent_at=None, updated_at=now):
            job_send(job_id=job.pk, task=str(job.params["task"]))
            requeued.append(job.pk)
    return requeued


def _resend_owed(now: Any) -> list[int]:
    before = now - timedelta(seconds=conf.job_send_grace_seconds())
    queued = Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False, updated_at__lt=before)
    owed = list(queued.filter(sent_at__isnull=True).only("pk", "params"))
    held = broker_job_ids() if queued.filter(sent_at__lt=before).exists() else None
    if held is not None:
        owed += [job for job in queued.filter(sent_at__lt=before).only("pk", "params") if job.pk not in held]
    return [job.pk for job in owed if job_send(job_id=job.pk, task=str(job.params["task"]))]


def job_sweep(*, now: Any = None) -> dict[str, list[int]]:
    """The periodic safety net (see the module docstring); returns what it did, by job id."""
    now = now or timezone.now()
    report = {
        "requeued": _requeue_stale(now),
        "resent": _resend_owed(now),
        "files_removed": staging.staged_sweep(now=now),
    }
    spool.spool_sweep()
    return report


def job_requeue_stale(*, now: Any = None) -> list[int]:
    """Re-queue (and send again) RUNNING jobs whose heartbeat stopped."""
    return _requeue_stale(now or timezone.now())
