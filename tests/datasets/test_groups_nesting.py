"""Nesting of dataset groups at depth (docs/datasets.md#groups): the cycle check sees every
level, nesting changes run one at a time, and expanding a group reads each nested group once."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, connections, transaction

from apps.core.db import is_contention
from apps.core.exceptions import DomainError
from apps.datasets import services
from apps.datasets.models import DatasetGroup, DatasetGroupEntry
from apps.datasets.selectors.groups import group_datasets
from apps.datasets.services import groups as writes

pytestmark = pytest.mark.django_db


def _chain(n: int) -> list[DatasetGroup]:
    """g0 → g1 → … → g(n-1), each nesting the next."""
    chain = [writes.group_create(name=f"G{i}") for i in range(n)]
    for parent, child in itertools.pairwise(chain):
        writes.group_append(group=parent, groups=[child.pk])
    return chain


def test_a_cycle_deeper_than_32_levels_is_refused() -> None:
    chain = _chain(40)
    with pytest.raises(DomainError) as caught:
        writes.group_append(group=chain[-1], groups=[chain[0].pk])
    assert caught.value.code == "datasets.group_cycle"
    assert not DatasetGroupEntry.objects.filter(group=chain[-1]).exists()


def test_copying_a_group_deeper_than_32_levels_above_is_refused() -> None:
    chain = _chain(40)
    with pytest.raises(DomainError) as caught:
        writes.group_append_group(group=chain[-1], other_id=chain[0].pk)
    assert caught.value.code == "datasets.group_cycle"


def test_datasets_deeper_than_32_levels_are_listed() -> None:
    chain = _chain(40)
    dataset = services.dataset_create(name="Deep")
    writes.group_append(group=chain[-1], data_sets=[dataset.pk])
    assert [flat.dataset.pk for flat in group_datasets(group=chain[0])] == [dataset.pk]


@pytest.mark.django_db(transaction=True)
def test_nesting_changes_of_unrelated_groups_wait_for_each_other() -> None:
    """Two appends that could close a cycle between them must not both pass the check: every
    nesting change takes one lock, so a second (even on other groups) waits for the first.
    MariaDB only: SQLite serialises writers by itself."""
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB")
    first, second, third, fourth = (writes.group_create(name=f"L{i}") for i in range(4))
    caught: list[BaseException] = []

    def other_client() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            writes.group_append(group=third, groups=[fourth.pk])
        except BaseException as exc:  # reported to the test thread
            caught.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        writes.group_append(group=first, groups=[second.pk])
        thread = threading.Thread(target=other_client)
        thread.start()
        thread.join(timeout=30)
    assert len(caught) == 1
    assert is_contention(caught[0])
    assert not DatasetGroupEntry.objects.filter(group=third).exists()


def test_diamond_nesting_reads_each_level_once(django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    """12 levels of two groups, each nesting both groups of the next level: 4,095 paths to the
    bottom. The walk reads one query per level and lists the bottom dataset once."""
    levels = [[writes.group_create(name=f"D{n}{side}") for side in "ab"] for n in range(12)]
    for upper, lower in itertools.pairwise(levels):
        for group in upper:
            writes.group_append(group=group, groups=[g.pk for g in lower])
    top = writes.group_create(name="Top")
    writes.group_append(group=top, groups=[g.pk for g in levels[0]])
    dataset = services.dataset_create(name="Bottom")
    writes.group_append(group=levels[-1][1], data_sets=[dataset.pk])
    with django_assert_max_num_queries(15):
        flat = group_datasets(group=top)
    assert [(f.dataset.pk, len(f.via)) for f in flat] == [(dataset.pk, 13)]
