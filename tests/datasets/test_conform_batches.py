"""Conform in batches (docs/datasets.md#conform): each batch of results is written, substituted
and recorded in one transaction; a batch that fails runs again one candidate at a time, so one
bad candidate fails alone; a job killed mid-batch resumes without duplicate rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core.exceptions import DomainError
from apps.datasets import selectors, services
from apps.datasets.models import Dataset, Subset
from apps.datasets.services import conform
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem
from apps.tags.models import TagSet
from tests.media.factories import WorkerKilled, job_items_record_dying
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


def _dataset(items: list[MediaItem]) -> Dataset:
    dataset = services.dataset_create(name="Train", requirements={"exact_width": 48, "exact_height": 48})
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    return dataset


def _members(owner: Dataset | Subset) -> set[int]:
    if isinstance(owner, Subset):
        return set(selectors.subset_members(subset=owner).values_list("pk", flat=True))
    return set(selectors.dataset_members(dataset=owner).values_list("pk", flat=True))


def test_one_bad_candidate_fails_alone_and_leaves_no_result(monkeypatch):
    items = [make_item(["t"], seed=200 + k, fmt="png", size=(96, 64)) for k in range(6)]
    ok_alpha = make_item(seed=209, fmt="png", size=(48, 48))  # passes: skipped, still recorded
    dataset = _dataset([*items, ok_alpha])
    subset = services.subset_create(dataset=dataset, name="half")
    services.members_edit(owner=subset, action="add", item_ids=[i.pk for i in items[:4]])
    bad = items[3]
    real = conform.members_edit

    def edit(*, owner: Any, action: str, item_ids: Any) -> Any:
        if action == "exclude" and bad.pk in item_ids:
            raise DomainError("This item may not leave the dataset.", code="datasets.test_refusal")
        return real(owner=owner, action=action, item_ids=item_ids)

    monkeypatch.setattr(conform, "members_edit", edit)
    job = conform.conform_start(dataset=dataset)
    conform.conform_run(job_id=job.pk)
    job.refresh_from_db()
    rows = dict(JobItem.objects.filter(job=job).values_list("seq", "status"))
    assert rows == {**{i.pk: "created" for i in items if i is not bad}, bad.pk: "failed"}
    assert JobItem.objects.get(job=job, seq=bad.pk).error_code == "datasets.test_refusal"
    assert not MediaItem.objects.filter(parent=bad).exists()  # its result's rows went with it
    derived = {i.pk: MediaItem.objects.get(parent=i).pk for i in items if i is not bad}
    assert _members(dataset) == {*derived.values(), bad.pk, ok_alpha.pk}
    assert TagSet.objects.filter(media_item_id__in=derived.values(), kind=TagSet.Kind.DERIVED).count() == 5
    assert _members(subset) == {derived[i.pk] for i in items[:3]} | {bad.pk}
    assert job.counts == {"created": 5, "failed": 1}


def test_a_conform_job_killed_mid_batch_resumes_exactly(monkeypatch, media_store):
    items = [make_item(seed=300 + k, fmt="jpeg", size=(90, 60)) for k in range(20)]
    dataset = _dataset(items)
    job = conform.conform_start(dataset=dataset)
    # The second batch's rows and swaps are written, then the worker dies.
    restore = job_items_record_dying(monkeypatch, on_call=2)
    files_before = set(media_store.files())
    with pytest.raises(WorkerKilled):
        conform.conform_run(job_id=job.pk)
    first = sorted(i.pk for i in items)[:16]
    assert sorted(JobItem.objects.filter(job=job).values_list("seq", flat=True)) == first
    assert MediaItem.objects.filter(parent__in=items).count() == 16
    assert len(set(media_store.files()) - files_before) == 2 * 16
    done = set(MediaItem.objects.filter(parent__in=items).values_list("pk", flat=True))
    assert _members(dataset) == done | {i.pk for i in items if i.pk not in first}

    restore()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(days=1))
    conform.conform_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.counts) == ("succeeded", {"created": 20})
    results = MediaItem.objects.filter(parent__in=items)
    assert results.count() == 20
    assert _members(dataset) == set(results.values_list("pk", flat=True))
    assert len(set(media_store.files()) - files_before) == 2 * 20
