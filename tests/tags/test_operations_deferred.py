"""A bulk job's deferred effective refresh: its chunks write assignments and mark the operation
`effective_pending`; searches warn until the follow-up pass (or the safety net) settles it, and
the result is the same as refreshing in every chunk.

docs/tags.md#deferred-effective-refresh
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.jobs import services as job_services
from apps.search.query import search_media
from apps.tags.models import Operation
from apps.tags.services import operations as ops
from apps.tags.services import tag_set_edit
from apps.tags.services.operations.run import _step
from apps.tags.services.operations.settle import operation_effective_settle, operations_settle_pending
from apps.tags.tasks import rebuild_stale_task
from tests.tags.factories import library
from tests.tags.snapshots import assert_no_drift, curated_names, effective_names, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings, monkeypatch):
    """Bulk requests become jobs of 3 items per chunk; nothing is sent to a broker."""
    settings.BULK_SYNC_MAX_CHANGES = 0
    settings.BULK_CHUNK_ITEMS = 3
    monkeypatch.setattr(job_services.current_app, "send_task", lambda name, kwargs: None)


def _job_started(action: str, items: list[Any], actor: Any, **kwargs: Any) -> tuple[Operation, Any]:
    """The operation queued as a job, and the job as a worker claimed it."""
    operation, job = _queued(action, items, actor, **kwargs)
    return operation, job_services.job_claim(job_id=job.pk)


def _queued(action: str, items: list[Any], actor: Any, **kwargs: Any) -> tuple[Operation, Any]:
    preview = ops.operation_preview(action=action, ids=[i.pk for i in items], actor=actor, **kwargs)
    outcome = ops.operation_apply(operation=preview.operation, actor=actor)
    assert outcome.job is not None
    return outcome.operation, outcome.job


def _warnings() -> set[str]:
    return {w["code"] for w in search_media(q="cat", viewer=None).warnings}


def test_chunks_leave_effective_tags_pending_and_search_says_so(curator, queued):
    items = library(7, curated=["cat"])
    operation, job = _job_started("add", items, curator, tags=["dog"])
    assert "stale_items" not in _warnings()
    _step(operation.pk, curator.pk, None, job)  # the first chunk: a worker dies after it
    operation.refresh_from_db()
    assert operation.effective_pending
    assert "dog" in curated_names(items[0])
    assert "dog" not in effective_names(items[0])
    assert "stale_items" in _warnings()
    assert operation_effective_settle(operation_id=operation.pk) == 3
    assert effective_names(items[0]) == {"cat", "dog"}


def test_a_finished_job_is_settled_exactly_like_a_sync_apply(curator, queued, settings):
    items = library(7, curated=["cat", "sky"])
    before = snapshot()
    operation, job = _queued("replace", items, curator, from_tags=["cat"], to_tags=["dog"])
    ops.operation_run(job_id=job.pk)
    operation.refresh_from_db()
    assert (operation.status, operation.effective_pending) == ("applied", False)
    assert all(effective_names(i) == {"dog", "sky"} for i in items)
    assert_no_drift()
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    ops.operation_undo(operation=operation, actor=curator)
    assert snapshot() == before


def test_an_edit_while_pending_and_the_safety_net_leave_no_drift(curator, queued):
    items = library(5, curated=["cat"])
    operation, job = _job_started("remove", items, curator, tags=["cat"])
    _step(operation.pk, curator.pk, None, job)
    _step(operation.pk, curator.pk, None, job)
    # Someone edits an item of the operation before its pass: their refresh is exact at once.
    tag_set = items[0].tag_sets.get(kind=2)
    tag_set_edit(tag_set=tag_set, add=["sun"], actor=curator)
    assert effective_names(items[0]) == {"sun"}
    # The worker died after its last chunk; the operation is finished but still pending.
    Operation.objects.filter(pk=operation.pk).update(status=Operation.Status.APPLIED)
    assert rebuild_stale_task() == 5
    assert not Operation.objects.get(pk=operation.pk).effective_pending
    assert all(effective_names(i) == set() for i in items[1:])
    assert "stale_items" not in _warnings()
    assert operations_settle_pending() == 0
    assert_no_drift()


def test_a_running_operation_is_not_settled_by_the_safety_net(curator, queued):
    items = library(7, curated=["cat"])
    operation, job = _job_started("add", items, curator, tags=["dog"])
    _step(operation.pk, curator.pk, None, job)
    assert operations_settle_pending() == 0
    assert Operation.objects.get(pk=operation.pk).effective_pending
