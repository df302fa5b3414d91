"""Reads of dataset groups (docs/datasets.md#groups): the list, one group, its entries and the
datasets it stands for with nested groups expanded."""

from __future__ import annotations

from collections.abc import Iterator
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
    reached twice is listed once, where first reached.

    The entries are read one query per level of nesting (every group of a level at once, each
    group once however many paths reach it); the walk in order then expands each group once:
    a group reached again (a diamond) adds nothing new, so it is skipped."""
    entries: dict[int, list[DatasetGroupEntry]] = {}
    queried: set[int] = set()
    frontier = {group.pk}
    while frontier:
        queried |= frontier
        rows = DatasetGroupEntry.objects.filter(group_id__in=frontier).select_related("dataset", "child")
        children: set[int] = set()
        for entry in rows.order_by("group_id", "position"):
            entries.setdefault(entry.group_id, []).append(entry)
            if entry.child_id is not None:
                children.add(entry.child_id)
        frontier = children - queried
    out: list[FlatDataset] = []
    seen: set[int] = set()
    expanded = {group.pk}
    stack: list[tuple[Iterator[DatasetGroupEntry], list[int]]] = [
        (iter(entries.get(group.pk, [])), [group.pk])  # an explicit stack: no recursion limit
    ]
    while stack:
        rest, path = stack[-1]
        step = next(rest, None)
        if step is None:
            stack.pop()
        elif step.dataset is not None and step.dataset_id not in seen:
            seen.add(step.dataset.pk)
            out.append(FlatDataset(step.dataset, path))
        elif step.child_id is not None and step.child_id not in expanded:
            expanded.add(step.child_id)
            stack.append((iter(entries.get(step.child_id, [])), [*path, step.child_id]))
    return out
