"""The dataset lock (docs/datasets.md#snapshots): member edits of a dataset or of one of its
subsets wait while a snapshot of the dataset is being frozen, so its parts show one moment.
MariaDB only: SQLite serialises writers by itself."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction

from apps.core.db import is_contention
from apps.datasets import services
from apps.datasets.models import Dataset, SubsetItem
from apps.datasets.services.snapshots import snapshot_create
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db(transaction=True)


def _while_frozen(dataset: Dataset, work: Callable[[], object]) -> list[BaseException]:
    """Run `work` on another connection (lock waits of 1 s) while a snapshot is being made."""
    caught: list[BaseException] = []

    def other_client() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            work()
        except BaseException as exc:  # reported to the test thread
            caught.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        snapshot_create(dataset=dataset)
        thread = threading.Thread(target=other_client)
        thread.start()
        thread.join(timeout=30)
    return caught


@pytest.mark.parametrize("action", ["add", "exclude"])
def test_subset_member_edit_waits_for_a_snapshot(action: str) -> None:
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB")
    dataset = services.dataset_create(name="Faces")
    subset = services.subset_create(dataset=dataset, name="Close")
    item = make_item()
    caught = _while_frozen(
        dataset, lambda: services.members_edit(owner=subset, action=action, item_ids=[item.pk])
    )
    assert len(caught) == 1
    assert is_contention(caught[0])
    assert not SubsetItem.objects.filter(subset=subset).exists()


def test_subset_query_edit_waits_for_a_snapshot() -> None:
    if connection.vendor != "mysql":
        pytest.skip("row locks: MariaDB")
    dataset = services.dataset_create(name="Faces")
    subset = services.subset_create(dataset=dataset, name="Close")
    caught = _while_frozen(dataset, lambda: services.subset_update(subset=subset, query="rating:safe"))
    assert len(caught) == 1
    assert is_contention(caught[0])
