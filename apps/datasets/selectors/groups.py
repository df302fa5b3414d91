"""Reads of dataset groups (docs/datasets.md#groups): the list, one group, its entries and the
datasets it stands for with nested groups expanded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from apps.core.exceptions import NotFoundError
from apps.datasets.models import Dataset, DatasetGroup, DatasetGroupEntry


def group_list(*, search: str = "") -> QuerySet[DatasetGroup]:
    groups = DatasetGroup.objects.order_by("-id")
    if search:
        groups = groups.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return groups


def group_get(*, group_id: Any) -> DatasetGroup:
    try:
        return DatasetGroup.objects.get(pk=int(group_id))
    except (DatasetGroup.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Dataset group {group_id} not found.", code="datasets.group_not_found") from exc


def group_entries(*, group: DatasetGroup) -> list[DatasetGroupEntry]:
    return list(
        DatasetGroupEntry.objects.filter(group=group).select_related("dataset", "child").order_by("position")
    )


def group_descendants(*, group_ids: set[int]) -> set[int]:
    """Every group nested (at any depth) inside these groups, them excluded unless reached
    again. One query per level; no level cap: a group is expanded once, so the walk ends after
    at most as many levels as there are groups, and the cycle check sees every depth."""
    found: set[int] = set()
    frontier = set(group_ids)
    while frontier:
        children = set(
            DatasetGroupEntry.objects.filter(group_id__in=frontier, child__isnull=False).values_list(
                "child_id", flat=True
            )
        )
        frontier = children - found
        found |= frontier
    return found


@dataclass
class FlatDataset:
    dataset: Dataset
    via: list[int]  # the groups from the top group down to the one holding it


def group_datasets(*, group: DatasetGroup) -> list[FlatDataset]:
    """The datasets the group stands for in order, nested groups expanded in place; a dataset
    reached twice is listed once, where first reached."""
    out: list[FlatDataset] = []
    seen: set[int] = set()

    def walk(current: DatasetGroup, path: list[int]) -> None:
        for entry in group_entries(group=current):
            if entry.dataset is not None and entry.dataset_id not in seen:
                seen.add(entry.dataset.pk)
                out.append(FlatDataset(entry.dataset, [*path, current.pk]))
            elif entry.child is not None and entry.child_id not in path:
                walk(entry.child, [*path, current.pk])

    walk(group, [])
    return out
