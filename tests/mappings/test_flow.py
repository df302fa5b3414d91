"""A real Celery worker runs a large apply in chunks, with progress."""

from __future__ import annotations

import time

import pytest

from apps.jobs.models import Job
from apps.mappings.services import apply
from apps.tags import slots
from apps.tags.models import Operation, TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make


@pytest.mark.flow
def test_a_real_worker_applies_in_chunks(celery_worker_thread, curator, monkeypatch):
    monkeypatch.setattr(apply, "SYNC_MAX_ITEMS", 2)
    monkeypatch.setattr(apply, "CHUNK_ITEMS", 2)
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["a"], vocabulary=danbooru)
    items = items_make(5)
    assign([(i.pk, TagSet.Kind.CURATED, src["a"].pk) for i in items])
    profile = profile_make(e621, [set_make(danbooru, e621, [("a", "x")])], input_scope="curated")
    outcome = apply.mapping_apply(profile=profile, ids=[i.pk for i in items], actor=curator)
    assert outcome.job is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # The operation is marked applied just before the job is finished: wait for both.
        operation = Operation.objects.get(pk=outcome.operation.pk)
        job = Job.objects.get(pk=outcome.job.pk)
        if operation.status in ("applied", "failed", "partially_applied") and job.status in Job.FINISHED:
            break
        time.sleep(0.2)
    assert (operation.status, operation.counters["items_done"]) == ("applied", 5)
    assert (job.status, job.progress_done) == ("succeeded", 5)
    assert TagSet.objects.filter(slot=slots.mapping(profile.pk)).count() == 5
