"""The job state machine: claim once, progress, cancel, fail, release, sweep stale jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services
from apps.jobs.exceptions import JobSuperseded
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


def test_requeue_stale_sends_dead_jobs_again_and_leaves_live_ones(job, curator, settings):
    settings.BAGGINTAG_JOB_STALE_SECONDS = 60
    services.job_claim(job_id=job.pk)
    live = services.job_start(kind="test.kind", task="tests.noop", params={}, created_by=curator)
    services.job_claim(job_id=live.pk)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    requeued = services.job_requeue_stale()
    assert requeued == [job.pk]
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
    assert Job.objects.get(pk=live.pk).status == Job.Status.RUNNING


def test_job_log_keeps_the_latest_lines(job):
    for i in range(services.LOG_MAX_LINES + 5):
        services.job_log(job=job, line=f"line {i}")
    log = Job.objects.get(pk=job.pk).log
    assert len(log) == services.LOG_MAX_LINES
    assert log[-1].endswith(f"line {services.LOG_MAX_LINES + 4}")


def _stale(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))


def test_a_delivery_takes_over_a_running_job_whose_heartbeat_is_stale(job):
    first = services.job_claim(job_id=job.pk)
    assert services.job_claim(job_id=job.pk) is None  # heartbeat fresh: its worker is alive
    _stale(first)
    second = services.job_claim(job_id=job.pk)
    assert second is not None
    assert second.attempts == 2


def test_a_superseded_attempt_writes_nothing(job):
    first = services.job_claim(job_id=job.pk)
    _stale(first)
    second = services.job_claim(job_id=job.pk)
    services.job_item_record(job=second, seq=0, input="a.jpg", status="created", object_id=1)
    with pytest.raises(JobSuperseded):
        services.job_item_record(job=first, seq=1, input="b.jpg", status="created", object_id=2)
    with pytest.raises(JobSuperseded):
        services.job_progress(job=first, done=3)
    with pytest.raises(JobSuperseded):
        services.job_finish(job=first)
    row = Job.objects.get(pk=job.pk)
    assert list(JobItem.objects.filter(job=row).values_list("seq", flat=True)) == [0]
    assert (row.status, row.progress_done, row.counts) == (Job.Status.RUNNING, 1, {"created": 1})


def test_a_job_claimed_too_often_fails_instead_of_running_again(job, settings):
    settings.BAGGINTAG_JOB_MAX_ATTEMPTS = 2
    for _ in range(2):
        services.job_claim(job_id=job.pk)
        _stale(job)
    assert services.job_claim(job_id=job.pk) is None
    row = Job.objects.get(pk=job.pk)
    assert (row.status, row.error_code) == (Job.Status.FAILED, "jobs.worker_lost")
    services.job_retry(job=row)  # a retry gets a fresh allowance of attempts
    assert services.job_claim(job_id=job.pk).attempts == 3


def _record(job: Job, statuses: list[str]) -> Job:
    running = services.job_claim(job_id=job.pk)
    for seq, status in enumerate(statuses):
        error = DomainError("broken", code="media.corrupt") if status == "failed" else None
        services.job_item_record(job=running, seq=seq, input=f"{seq}.jpg", status=status, error=error)
    return services.job_finish(job=running)


def test_a_job_whose_inputs_all_failed_is_failed(job):
    done = _record(job, ["failed", "failed", "failed"])
    assert (done.status, done.outcome, done.error_code) == (
        Job.Status.FAILED,
        "failed",
        "jobs.all_inputs_failed",
    )
    assert done.outcome_label == "Failed"


def test_a_job_with_some_failures_finishes_with_a_failure_count(job):
    done = _record(job, ["created", "failed", "duplicate"])
    assert done.status == Job.Status.SUCCEEDED
    assert (done.outcome, done.failures) == ("succeeded_with_failures", 1)
    assert done.outcome_label == "Finished with 1 failure"


def test_retry_runs_failed_inputs_again_and_keeps_done_ones(job, django_capture_on_commit_callbacks):
    failed = _record(job, ["created", "failed", "failed"])
    Job.objects.filter(pk=failed.pk).update(status=Job.Status.FAILED)  # e.g. its worker kept dying
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retried = services.job_retry(job=failed)
    assert len(callbacks) == 1  # sent again after commit
    assert (retried.status, retried.error_code, retried.finished_at) == (Job.Status.QUEUED, "", None)
    assert retried.counts == {"created": 1}
    assert retried.progress_done == 1
    assert services.job_done_seqs(job=retried) == {0}
    assert services.job_claim(job_id=job.pk).attempts == 2


def test_retry_is_refused_unless_the_job_failed(job):
    with pytest.raises(ConflictError) as err:
        services.job_retry(job=job)
    assert err.value.code == "jobs.not_failed"


def test_retry_is_refused_once_the_staged_files_are_gone(curator, media_root, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = default_storage.save("staging/t/000000", ContentFile(b"x"))
    failed = services.job_start(kind="k", task="tests.noop", params={"staged": [key]}, created_by=curator)
    services.job_fail(job=services.job_claim(job_id=failed.pk), code="x", message="boom")
    assert default_storage.exists(key)  # kept for a retry
    settings.BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS = 0
    assert services.staged_sweep(now=timezone.now() + timedelta(seconds=1)) == [failed.pk]
    assert not default_storage.exists(key)
    with pytest.raises(ConflictError) as err:
        services.job_retry(job=Job.objects.get(pk=failed.pk))
    assert err.value.code == "jobs.inputs_removed"


def test_finishing_a_job_removes_its_staged_files(curator, media_root):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = default_storage.save("staging/u/000000", ContentFile(b"x"))
    started = services.job_start(kind="k", task="tests.noop", params={"staged": [key]}, created_by=curator)
    assert started.holds_files
    services.job_finish(job=services.job_claim(job_id=started.pk))
    assert not default_storage.exists(key)
    assert not Job.objects.get(pk=started.pk).holds_files


def test_the_sweeper_sends_queued_jobs_whose_send_failed(job, settings):
    settings.BAGGINTAG_JOB_SEND_GRACE_SECONDS = 0
    assert Job.objects.get(pk=job.pk).sent_at is None  # the fixture never ran its on-commit send
    report = services.job_sweep(now=timezone.now() + timedelta(seconds=1))
    assert report["resent"] == [job.pk]
    assert Job.objects.get(pk=job.pk).sent_at is not None


def test_spool_sweep_removes_files_of_dead_processes_and_old_files(settings, tmp_path):
    import os
    import subprocess
    import time

    from apps.core import spool

    settings.BAGGINTAG_SPOOL_DIR = str(tmp_path / "spool")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with spool.spool_file(prefix="bt-in-") as mine:
        mine.write(b"live")
    orphan = spool.spool_dir() / mine.name.rsplit("/", 1)[-1].replace(f"-{os.getpid()}-", f"-{dead.pid}-")
    orphan.write_bytes(b"dead")
    foreign = spool.spool_dir() / "bt-in-otherhost-1-abc"
    foreign.write_bytes(b"old")
    os.utime(foreign, (time.time() - 13 * 3600,) * 2)
    removed = spool.spool_sweep()
    assert sorted(removed) == sorted([orphan.name, foreign.name])
    assert os.path.exists(mine.name)
