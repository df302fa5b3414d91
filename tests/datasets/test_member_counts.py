"""The stored explicit member count (docs/datasets.md#membership): kept by members_edit in the
edit's transaction for datasets and subsets, and used by `dataset:`/`subset:` as the planner's
estimate without counting rows."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as registry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.exceptions import DomainError
from apps.datasets import services
from apps.datasets.models import Dataset, DatasetItem, Subset, SubsetItem
from apps.datasets.selectors.search import dataset_resolve, subset_resolve
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db


def _stored(owner: Dataset | Subset) -> int:
    return type(owner).objects.get(pk=owner.pk).explicit_count


def _real(owner: Dataset | Subset) -> int:
    if isinstance(owner, Subset):
        return SubsetItem.objects.filter(subset=owner, excluded=False).count()
    return DatasetItem.objects.filter(dataset=owner, excluded=False).count()


@pytest.mark.parametrize("kind", ["dataset", "subset"])
def test_count_follows_every_action(kind: str) -> None:
    dataset = services.dataset_create(name="Faces")
    owner: Dataset | Subset = dataset
    if kind == "subset":
        owner = services.subset_create(dataset=dataset, name="Close")
    a, b, c, d = (item.pk for item in items_make(4))
    steps = [
        ("add", [a, b, c]),  # 3
        ("add", [a]),  # already a member: 3
        ("exclude", [b, d]),  # b flips out, d never was: 2
        ("add", [b]),  # the exclusion cleared: 3
        ("remove", [a]),  # 2
        ("unexclude", [d]),  # 2
        ("exclude", [c]),  # 1
    ]
    seen = []
    for action, ids in steps:
        services.members_edit(owner=owner, action=action, item_ids=ids)
        seen.append((_stored(owner), _real(owner)))
    assert seen == [(3, 3), (3, 3), (2, 2), (3, 3), (2, 2), (2, 2), (1, 1)]


def test_a_refused_edit_leaves_the_count() -> None:
    dataset = services.dataset_create(name="Faces")
    item = items_make(1)[0].pk
    services.members_edit(owner=dataset, action="add", item_ids=[item])
    with pytest.raises(DomainError):
        services.members_edit(owner=dataset, action="remove", item_ids=[item, item + 1000])
    assert _stored(dataset) == 1


def test_qualifiers_use_the_stored_count_without_counting_rows() -> None:
    dataset = services.dataset_create(name="Faces")
    subset = services.subset_create(dataset=dataset, name="Close")
    ids = [item.pk for item in items_make(3)]
    services.members_edit(owner=dataset, action="add", item_ids=ids)
    services.members_edit(owner=subset, action="add", item_ids=ids[:2])
    with CaptureQueriesContext(connection) as queries:
        answers = [dataset_resolve("faces").count, subset_resolve("faces/close").count]
    assert answers == [3, 2]
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_migration_computes_counts_of_existing_rows() -> None:
    migration = importlib.import_module("apps.datasets.migrations.0003_member_counts")
    dataset = services.dataset_create(name="Old")
    subset = services.subset_create(dataset=dataset, name="Part")
    empty = services.dataset_create(name="Empty")
    a, b, c = items_make(3)
    DatasetItem.objects.bulk_create(
        [
            DatasetItem(dataset=dataset, media_item=a),
            DatasetItem(dataset=dataset, media_item=b),
            DatasetItem(dataset=dataset, media_item=c, excluded=True),
        ]
    )
    SubsetItem.objects.create(subset=subset, media_item=a)
    Dataset.objects.update(explicit_count=7)
    migration._counts(registry, None)
    assert [_stored(dataset), _stored(subset), _stored(empty)] == [2, 1, 0]
