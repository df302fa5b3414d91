"""The job state machine: claim once, progress, cancel, fail, release, sweep stale jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services
from apps.jobs.models import Job, JobItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(curator, django_capture_on_commit_callbacks) -> Job:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = services.job_start(
            kind="test.kind", task="tests.noop", params={"ids": [1, 2]}, created_by=curator, total=3
        )
    assert len(callbacks) == 1  # the task is sent only after commit
    return created


def test_job_start_queues_with_params_and_total(job):
    assert job.status == Job.Status.QUEUED
    assert job.params == {"ids": [1, 2], "task": "tests.noop"}
    assert (job.progress_done, job.progress_total, job.percent) == (0, 3, 0)


def test_job_claim_runs_once_even_when_the_message_is_redelivered(job):
    claimed = services.job_claim(job_id=job.pk)
    assert claimed is not None
    assert claimed.status == Job.Status.RUNNING
    assert claimed.attempts == 1
    assert claimed.started_at is not None
    assert services.job_claim(job_id=job.pk) is None  # redelivery: no second run
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_job_items_are_recorded_once_and_drive_counts_and_progress(job):
    running = services.job_claim(job_id=job.pk)
    services.job_item_record(job=running, seq=0, input="a.jpg", status="created", object_id=7)
    services.job_item_record(
        job=running, seq=1, input="b.jpg", status="failed", error=DomainError("broken", code="media.corrupt")
    )
    services.job_item_record(job=running, seq=1, input="b.jpg", status="created")  # replay: ignored
    row = Job.objects.get(pk=job.pk)
    assert row.counts == {"created": 1, "failed": 1}
    assert row.progress_done == 2
    assert services.job_done_seqs(job=row) == {0, 1}
    failed = JobItem.objects.get(job=row, seq=1)
    assert (failed.status, failed.error_code, failed.error_message) == ("failed", "media.corrupt", "broken")


def test_job_finish_and_fail_end_running_jobs_only(job):
    running = services.job_claim(job_id=job.pk)
    done = services.job_finish(job=running, result={"ok": True})
    assert done.status == Job.Status.SUCCEEDED
    assert done.result == {"ok": True}
    assert done.percent == 100
    again = services.job_fail(job=done, code="x", message="late failure")
    assert again.status == Job.Status.SUCCEEDED  # a finished job is never rewritten


def test_job_fail_records_the_error(job):
    failed = services.job_fail(
        job=services.job_claim(job_id=job.pk), code="media.corrupt", message="The file is damaged."
    )
    assert (failed.status, failed.error_code, failed.error_message) == (
        Job.Status.FAILED,
        "media.corrupt",
        "The file is damaged.",
    )
    assert failed.finished_at is not None


def test_cancel_queued_job_ends_it_and_a_late_delivery_does_nothing(job):
    cancelled = services.job_cancel(job=job)
    assert cancelled.status == Job.Status.CANCELLED
    assert services.job_claim(job_id=job.pk) is None
    with pytest.raises(ConflictError) as err:
        services.job_cancel(job=cancelled)
    assert err.value.code == "jobs.finished"


def test_cancel_running_job_asks_it_to_stop_and_finish_marks_it_cancelled(job):
    running = services.job_claim(job_id=job.pk)
    asked = services.job_cancel(job=running)
    assert asked.status == Job.Status.RUNNING
    assert asked.cancel_requested
    assert services.job_progress(job=running, done=1).cancel_requested
    assert services.job_finish(job=running).status == Job.Status.CANCELLED


def test_release_puts_a_running_job_back_in_the_queue(job):
    running = services.job_claim(job_id=job.pk)
    assert services.job_release(job=running).status == Job.Status.QUEUED
    assert services.job_claim(job_id=job.pk).attempts == 2


def test_requeue_stale_sends_dead_jobs_again_and_leaves_live_ones(
    job, curator, settings, django_capture_on_commit_callbacks
):
    settings.BAGGINTAG_JOB_STALE_SECONDS = 60
    services.job_claim(job_id=job.pk)
    live = services.job_start(kind="test.kind", task="tests.noop", params={}, created_by=curator)
    services.job_claim(job_id=live.pk)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        requeued = services.job_requeue_stale()
    assert requeued == [job.pk]
    assert len(callbacks) == 1
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
    assert Job.objects.get(pk=live.pk).status == Job.Status.RUNNING


def test_job_log_keeps_the_latest_lines(job):
    for i in range(services.LOG_MAX_LINES + 5):
        services.job_log(job=job, line=f"line {i}")
    log = Job.objects.get(pk=job.pk).log
    assert len(log) == services.LOG_MAX_LINES
    assert log[-1].endswith(f"line {services.LOG_MAX_LINES + 4}")
