"""A real Celery worker runs a conform job: progress, per-item outcomes, substitution."""

from __future__ import annotations

import time

import pytest

from apps.datasets import selectors, services
from apps.datasets.services import conform
from apps.jobs.models import Job
from apps.media.models import MediaItem
from tests.tags.factories import make_item


@pytest.mark.flow
def test_a_real_worker_conforms_a_dataset(celery_worker_thread, curator) -> None:  # type: ignore[no-untyped-def]
    big = [make_item(seed=i, size=(320, 240)) for i in range(3)]
    small = make_item(seed=9, size=(40, 40))
    dataset = services.dataset_create(name="Flow", requirements={"max_width": 160, "min_width": 100})
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in [*big, small]])
    job = conform.conform_start(dataset=dataset, actor=curator)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job.pk)
        if job.is_finished:
            break
        time.sleep(0.2)
    assert (job.outcome, job.progress_done, job.progress_total) == ("succeeded_with_failures", 4, 4)
    assert job.counts == {"created": 3, "failed": 1}
    derived = set(MediaItem.objects.filter(parent__in=big).values_list("pk", flat=True))
    members = set(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))
    assert members == derived | {small.pk}
