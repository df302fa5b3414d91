"""A bulk operation's job that ends without its body running it (cancelled through the jobs app
or API while queued, failed by the jobs app after losing its worker) ends the operation too:
cancelled, partially applied (undoable) or failed, never queued/running for ever.

docs/tags.md#operations-and-undo
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.jobs import services as job_services
from apps.jobs.events import job_finished_send
from apps.jobs.models import Job
from apps.tags.models import Operation, Tag, TagAlias
from apps.tags.services import operations as ops
from apps.tags.services.operations.run import _step
from apps.tags.services.operations.settle import operations_settle_pending
from tests.tags.factories import library
from tests.tags.snapshots import assert_no_drift, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings, monkeypatch):
    """Bulk requests become jobs of 3 items per chunk; nothing is sent to a broker."""
    settings.BULK_SYNC_MAX_CHANGES = 0
    settings.BULK_CHUNK_ITEMS = 3
    monkeypatch.setattr(job_services.current_app, "send_task", lambda name, kwargs: None)


def _queued(items: list[Any], actor: Any) -> tuple[Operation, Job]:
    preview = ops.operation_preview(action="add", tags=["dog"], ids=[i.pk for i in items], actor=actor)
    outcome = ops.operation_apply(operation=preview.operation, actor=actor)
    assert outcome.job is not None
    assert outcome.operation.status == Operation.Status.QUEUED
    return outcome.operation, outcome.job


def _worker_lost(job: Job, settings: Any, chunks: int = 0) -> None:
    """A worker claims the job, commits `chunks` chunks and dies; the sweeper gives up on it."""
    settings.BAGGINTAG_JOB_MAX_ATTEMPTS = 1
    running = job_services.job_claim(job_id=job.pk)
    assert running is not None
    operation_id = int(running.params["operation"])
    Operation.objects.filter(pk=operation_id).update(status=Operation.Status.RUNNING)
    for _ in range(chunks):
        _step(operation_id, None, None, running)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    job_services.job_requeue_stale()
    assert Job.objects.get(pk=job.pk).error_code == "jobs.worker_lost"


def _status(operation: Operation) -> str:
    return Operation.objects.get(pk=operation.pk).status


def test_cancelling_a_queued_job_through_the_jobs_service_cancels_its_operation(
    curator, queued, django_capture_on_commit_callbacks
):
    operation, job = _queued(library(7, curated=["cat"]), curator)
    with django_capture_on_commit_callbacks(execute=True):
        job_services.job_cancel(job=job)
    assert _status(operation) == Operation.Status.CANCELLED
    assert ops.operation_run(job_id=job.pk) is None  # a late delivery does nothing
    assert _status(operation) == Operation.Status.CANCELLED


def test_cancelling_a_queued_job_through_the_jobs_api_shows_it_cancelled(
    api, client, curator, queued, django_capture_on_commit_callbacks
):
    operation, job = _queued(library(4, curated=["cat"]), curator)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/jobs/{job.pk}/cancel").status_code == 200
    body = api.get(f"/api/tag-operations/{operation.pk}").json()
    assert (body["status"], body["job"]["status"]) == ("cancelled", "cancelled")
    client.force_login(curator)
    rows = client.get("/tags/operations/").content.decode()
    assert '<span class="status cancelled">Cancelled</span>' in rows
    assert '<span class="status queued">' not in rows


def test_a_job_the_sweeper_fails_after_a_chunk_leaves_an_undoable_partial_operation(
    api, client, curator, queued, settings, django_capture_on_commit_callbacks
):
    items = library(7, curated=["cat"])
    before = snapshot()
    operation, job = _queued(items, curator)
    with django_capture_on_commit_callbacks(execute=True):
        _worker_lost(job, settings, chunks=1)
    ended = Operation.objects.get(pk=operation.pk)
    assert (ended.status, ended.counters["items_done"]) == (Operation.Status.PARTIAL, 3)
    assert "job failed before" in ended.error
    body = api.get(f"/api/tag-operations/{operation.pk}").json()
    assert (body["status"], body["can_undo"]) == ("partially_applied", True)
    client.force_login(curator)
    page = client.get(f"/tags/operations/{operation.pk}/").content.decode()
    assert "Partially applied" in page
    assert f"/tags/operations/{operation.pk}/undo" in page  # its Undo button
    assert operations_settle_pending() == 3  # the beat safety net settles its effective tags
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    undo = ops.operation_undo(operation=ended, actor=curator).operation
    assert undo.status == Operation.Status.APPLIED
    assert snapshot() == before
    assert_no_drift()


def test_a_job_the_sweeper_fails_before_any_chunk_fails_its_operation(
    curator, queued, settings, django_capture_on_commit_callbacks
):
    operation, job = _queued(library(4, curated=["cat"]), curator)
    with django_capture_on_commit_callbacks(execute=True):
        _worker_lost(job, settings)
    ended = Operation.objects.get(pk=operation.pk)
    assert ended.status == Operation.Status.FAILED
    assert not ops.operation_can_undo(ended)


def test_a_retried_job_resumes_the_partial_operation_and_applies_it(
    curator, queued, settings, django_capture_on_commit_callbacks
):
    operation, job = _queued(library(7, curated=["cat"]), curator)
    with django_capture_on_commit_callbacks(execute=True):
        _worker_lost(job, settings, chunks=1)
    job_services.job_retry(job=Job.objects.get(pk=job.pk))
    ops.operation_run(job_id=job.pk)
    ended = Operation.objects.get(pk=operation.pk)
    assert (ended.status, ended.counters["items_done"]) == (Operation.Status.APPLIED, 7)
    assert_no_drift()


def test_an_undo_job_cancelled_while_queued_is_cancelled_and_the_undo_can_be_asked_again(
    curator, client, queued, settings, django_capture_on_commit_callbacks
):
    items = library(4, curated=["cat"])
    before = snapshot()
    operation, job = _queued(items, curator)
    ops.operation_run(job_id=job.pk)
    applied = Operation.objects.get(pk=operation.pk)
    undo = ops.operation_undo(operation=applied, actor=curator)
    assert undo.job is not None
    assert undo.operation.status == Operation.Status.QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        job_services.job_cancel(job=undo.job)
    assert _status(undo.operation) == Operation.Status.CANCELLED
    applied.refresh_from_db()
    assert ops.operation_can_undo(applied)
    client.force_login(curator)
    rows = client.get("/tags/operations/").content.decode()
    assert f"/tags/operations/{applied.pk}/undo" in rows  # its Undo button is back
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    assert ops.operation_undo(operation=applied, actor=curator).operation.status == Operation.Status.APPLIED
    assert snapshot() == before


def test_an_operation_its_job_body_ended_is_left_alone(curator, queued, django_capture_on_commit_callbacks):
    operation, job = _queued(library(4, curated=["cat"]), curator)
    ops.operation_run(job_id=job.pk)
    assert _status(operation) == Operation.Status.APPLIED
    with django_capture_on_commit_callbacks(execute=True):
        job_finished_send(job_id=job.pk, kind=job.kind, status=Job.Status.FAILED)
        job_finished_send(job_id=job.pk, kind=job.kind, status=Job.Status.CANCELLED)
    assert _status(operation) == Operation.Status.APPLIED


def test_cancel_through_the_operation_still_ends_a_queued_one_at_once(curator, queued):
    operation, job = _queued(library(4, curated=["cat"]), curator)
    assert ops.operation_cancel(operation=operation, actor=curator).status == Operation.Status.CANCELLED
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_a_library_rename_whose_job_is_lost_before_a_chunk_is_partial_for_its_alias(
    curator, queued, settings, django_capture_on_commit_callbacks
):
    library(4, curated=["cat"])
    preview = ops.operation_preview(
        action="rename", from_tags=["cat"], to_tags=["kitty"], scope="library", actor=curator
    )
    outcome = ops.operation_apply(operation=preview.operation, actor=curator)
    assert outcome.job is not None
    assert TagAlias.objects.get(antecedent__name="cat").status == "active"  # before any chunk
    with django_capture_on_commit_callbacks(execute=True):
        _worker_lost(outcome.job, settings)
    ended = Operation.objects.get(pk=outcome.operation.pk)
    assert ended.status == Operation.Status.PARTIAL  # the alias and deprecation were written
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    ops.operation_undo(operation=ended, actor=curator)
    assert TagAlias.objects.get(antecedent__name="cat").status == "retired"
    assert not Tag.objects.get(name="cat").is_deprecated


def test_the_safety_net_ends_an_operation_whose_job_finished_event_was_lost(curator, queued, settings):
    from apps.tags.tasks import rebuild_stale_task

    items = library(7, curated=["cat"])
    operation, job = _queued(items, curator)
    _worker_lost(job, settings, chunks=1)  # outside a captured commit: the event never runs
    assert _status(operation) == Operation.Status.RUNNING
    assert rebuild_stale_task() == 3  # ended, then its pending effective tags settled
    ended = Operation.objects.get(pk=operation.pk)
    assert (ended.status, ended.effective_pending) == (Operation.Status.PARTIAL, False)
    assert ops.operations_end_orphaned() == 0
    assert_no_drift()


def test_retrying_the_job_of_a_partial_operation_undone_meanwhile_changes_nothing(
    curator, queued, settings, django_capture_on_commit_callbacks
):
    items = library(7, curated=["cat"])
    before = snapshot()
    operation, job = _queued(items, curator)
    with django_capture_on_commit_callbacks(execute=True):
        _worker_lost(job, settings, chunks=1)
    operations_settle_pending()
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    ops.operation_undo(operation=Operation.objects.get(pk=operation.pk), actor=curator)
    job_services.job_retry(job=Job.objects.get(pk=job.pk))
    ops.operation_run(job_id=job.pk)
    failed = Job.objects.get(pk=job.pk)
    assert (failed.status, failed.error_code) == (Job.Status.FAILED, "tags.operation_undone")
    assert _status(operation) == Operation.Status.UNDONE
    assert snapshot() == before
