"""Bulk operations running at the same time on the same items (docs/tags.md#apply).

Each thread has its own connection and transactions. On MariaDB the chunks lock their items
and sets in ascending id, so overlapping operations queue instead of losing updates; SQLite
serialises writers (IMMEDIATE transactions), so there the same tests simply run one after the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from apps.jobs.models import Job
from apps.tags.models import Operation, TagAssignment
from apps.tags.services import operations as ops
from tests.tags.factories import library
from tests.tags.snapshots import assert_no_drift

# Row locks and deadlock retries are only exercised for real on MariaDB (SQLite serialises
# writers), but the suite runs them on both. No serialized_rollback: post_migrate re-seeds the
# default types, vocabulary and the curators group after each flush, and restoring the
# serialized copy on top of them collided on the group name.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mariadb]


def in_threads(*work: Callable[[], Any]) -> list[BaseException]:
    """Run the callables together (released at once); returns what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def body(fn: Callable[[], Any]) -> None:
        try:
            start.wait()
            fn()
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(fn,)) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def per_item(tag: str, state: int = 1) -> int:
    return TagAssignment.objects.filter(kind=2, tag__name=tag, state=state).count()


def test_two_sync_operations_on_the_same_items_lose_nothing(curator):
    items = library(300, curated=["cat", "sky"])
    ids = [i.pk for i in items]

    def add(tag: str) -> Callable[[], None]:
        return lambda: ops.operation_bulk(action="add", tags=[tag], ids=ids, dry_run=False, actor=curator)

    errors = in_threads(
        add("x"),
        add("y"),
        lambda: ops.operation_bulk(action="remove", tags=["sky"], ids=ids, dry_run=False, actor=curator),
    )
    assert errors == []
    assert (per_item("x"), per_item("y"), per_item("cat"), per_item("sky", 0)) == (300, 300, 300, 300)
    assert Operation.objects.filter(status="applied").count() == 3
    assert_no_drift()


def test_two_chunked_jobs_interleave_without_lost_updates(curator, settings, monkeypatch):
    from apps.jobs import services as job_services

    monkeypatch.setattr(job_services.current_app, "send_task", lambda name, kwargs: None)
    settings.BULK_SYNC_MAX_CHANGES = 0
    settings.BULK_CHUNK_ITEMS = 40
    items = library(200, curated=["cat"])
    ids = [i.pk for i in items]
    _p, first = ops.operation_bulk(action="add", tags=["x"], ids=ids, dry_run=False, actor=curator)
    _p, second = ops.operation_bulk(
        action="replace", from_tags=["cat"], to_tags=["kitty"], ids=ids, dry_run=False, actor=curator
    )
    assert first is not None
    assert second is not None
    assert first.job
    assert second.job
    jobs = (first.job.pk, second.job.pk)
    errors = in_threads(*(lambda job_id=job_id: ops.operation_run(job_id=job_id) for job_id in jobs))
    assert errors == []
    assert set(Job.objects.filter(pk__in=jobs).values_list("status", flat=True)) == {"succeeded"}
    assert (per_item("x"), per_item("kitty"), per_item("cat", 0), per_item("cat")) == (200, 200, 200, 0)
    assert_no_drift()
    # Undo the first while keeping the second: x goes, kitty stays.
    ops.operation_undo(operation=Operation.objects.get(pk=first.operation.pk), actor=curator)
    deadline = time.monotonic() + 30
    undo = Operation.objects.get(undo_of_id=first.operation.pk)
    if undo.job_id:
        ops.operation_run(job_id=undo.job_id)
    assert time.monotonic() < deadline
    assert (per_item("x"), per_item("kitty")) == (0, 200)
    assert_no_drift()


@pytest.mark.flow
def test_a_real_worker_runs_a_large_operation(celery_worker_thread, curator, settings):
    settings.BULK_SYNC_MAX_CHANGES = 10
    settings.BULK_CHUNK_ITEMS = 25
    items = library(60, curated=["cat"])
    _preview, outcome = ops.operation_bulk(
        action="add", tags=["dog"], ids=[i.pk for i in items], dry_run=False, actor=curator
    )
    assert outcome is not None
    assert outcome.job is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        operation = Operation.objects.get(pk=outcome.operation.pk)
        if operation.status in ("applied", "failed", "partially_applied"):
            break
        time.sleep(0.2)
    assert operation.status == "applied"
    assert operation.counters["changes"] == 60
    assert Job.objects.get(pk=outcome.job.pk).status == "succeeded"
    assert per_item("dog") == 60
    assert_no_drift()
