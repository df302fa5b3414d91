"""`job_finished` (apps/jobs/events.py, docs/architecture.md#jobs): sent once per end, after the
change commits, however the job ended; nothing while it runs; a receiver that raises disturbs
neither the job nor the other receivers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.jobs import services
from apps.jobs.events import job_finished
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen() -> Iterator[list[tuple[int, str, str]]]:
    got: list[tuple[int, str, str]] = []

    def record(sender: Any = None, job_id: int = 0, kind: str = "", status: str = "", **_: Any) -> None:
        got.append((job_id, kind, status))

    def broken(**_: Any) -> None:
        raise RuntimeError("a broken receiver")

    job_finished.connect(broken, weak=False, dispatch_uid="test.broken")
    job_finished.connect(record, weak=False, dispatch_uid="test.record")
    try:
        yield got
    finally:
        job_finished.disconnect(dispatch_uid="test.record")
        job_finished.disconnect(dispatch_uid="test.broken")


def _job(curator: Any) -> Job:
    return services.job_start(kind="test.kind", task="tests.noop", params={}, created_by=curator)


def test_finish_fail_and_cancel_send_it_after_commit(
    curator, seen, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        done, failed, queued = _job(curator), _job(curator), _job(curator)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        running = services.job_claim(job_id=done.pk)
        services.job_progress(job=running, done=1, total=2)
        assert seen == []  # nothing while it runs
        services.job_finish(job=running)
        assert seen == []  # not before the commit
    assert callbacks
    with django_capture_on_commit_callbacks(execute=True):
        services.job_fail(job=services.job_claim(job_id=failed.pk), code="test.broken", message="Broken.")
        services.job_cancel(job=queued)
        services.job_finish(job=Job.objects.get(pk=done.pk))  # finished already: no second end
    assert seen == [
        (done.pk, "test.kind", "succeeded"),
        (failed.pk, "test.kind", "failed"),
        (queued.pk, "test.kind", "cancelled"),
    ]
    assert Job.objects.get(pk=done.pk).status == Job.Status.SUCCEEDED


def test_the_sweeper_giving_up_sends_it(curator, seen, settings, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    settings.BAGGINTAG_JOB_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        job = _job(curator)
        services.job_claim(job_id=job.pk)
        Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
        services.job_requeue_stale()
    assert seen == [(job.pk, "test.kind", "failed")]
    assert Job.objects.get(pk=job.pk).error_code == "jobs.worker_lost"
