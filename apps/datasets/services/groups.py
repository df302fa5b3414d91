"""Dataset groups (docs/datasets.md#groups): create, edit, delete; append datasets or nested
groups, copy another group's entries, remove entries. A group never contains itself, directly
or through nesting; every change is all or nothing."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetGroup, DatasetGroupEntry, GroupNestingLock
from apps.datasets.selectors.groups import group_descendants
from apps.datasets.services.datasets import _unique
from apps.datasets.services.members import clean_ids

ENTRIES_MAX = 1000


def _named(group: DatasetGroup) -> None:
    group.name = group.name.strip()
    if not group.name or not group.slug:
        raise DomainError(
            "name: a name with at least one letter or digit.",
            code="datasets.invalid",
            details={"fields": {"name": ["A name with at least one letter or digit."]}},
        )


@transaction.atomic
def group_create(*, name: str, slug: str = "", description: str = "") -> DatasetGroup:
    group = DatasetGroup(name=name.strip(), slug=slug or slugify(name)[:100], description=description)
    _named(group)
    _unique(group.save, "dataset group")
    return group


@transaction.atomic
def group_update(*, group: DatasetGroup, **fields: Any) -> DatasetGroup:
    if "slug" in fields and not fields["slug"]:
        fields["slug"] = slugify(fields.get("name") or group.name)[:100]
    for field, value in fields.items():
        setattr(group, field, value)
    _named(group)
    _unique(group.save, "dataset group")
    return group


def group_delete(*, group: DatasetGroup) -> None:
    """The group and its entries; groups that nest it lose that entry; datasets stay."""
    group.delete()


NESTING_LOCK_PK = 1


def _lock(group: DatasetGroup) -> DatasetGroup:
    """Take the nesting lock, then lock the group row: every change to any group's entries
    runs one at a time, so a cycle check never misses an append committing beside it (two
    appends each passing the check under READ COMMITTED could close a cycle between them).
    The row is made by migration 0004; it is made again if a test flush removed it."""
    GroupNestingLock.objects.select_for_update().get_or_create(pk=NESTING_LOCK_PK)
    return DatasetGroup.objects.select_for_update().get(pk=group.pk)


def _ids_of(raw: Any, field: str) -> list[int]:
    if raw in (None, []):
        return []
    try:
        clean_ids(raw)
    except DomainError as exc:
        raise DomainError(
            f"{field}: a list of ids.", code="datasets.bad_ids", details={"fields": {field: [exc.message]}}
        ) from exc
    return list(dict.fromkeys(int(value) for value in raw))  # checked above; the order counts


def _check_nesting(group: DatasetGroup, child_ids: list[int]) -> None:
    """A child that is the group or contains it (at any depth) would make a cycle: 400."""
    if group.pk in child_ids:
        raise DomainError(
            f"Group {group.pk} cannot contain itself.",
            code="datasets.group_cycle",
            details={"groups": [group.pk]},
        )
    bad = sorted(c for c in child_ids if group.pk in group_descendants(group_ids={c}))
    if bad:
        raise DomainError(
            f"Group {group.pk} is already inside group {bad[0]}; nesting {bad[0]} in it would make "
            "the group contain itself.",
            code="datasets.group_cycle",
            details={"groups": bad},
        )


def _append(group: DatasetGroup, dataset_ids: list[int], child_ids: list[int]) -> int:
    """Append entries not yet in the group, in the given order; returns how many were new."""
    have = DatasetGroupEntry.objects.filter(group=group)
    known_ds = set(have.filter(dataset_id__in=dataset_ids).values_list("dataset_id", flat=True))
    known_ch = set(have.filter(child_id__in=child_ids).values_list("child_id", flat=True))
    new = [("d", i) for i in dataset_ids if i not in known_ds] + [
        ("g", i) for i in child_ids if i not in known_ch
    ]
    if have.count() + len(new) > ENTRIES_MAX:
        raise DomainError(f"A group holds at most {ENTRIES_MAX} entries.", code="datasets.group_too_large")
    start = (have.aggregate(n=Max("position"))["n"] or 0) + 1
    DatasetGroupEntry.objects.bulk_create(
        [
            DatasetGroupEntry(
                group=group,
                position=start + n,
                dataset_id=target if kind == "d" else None,
                child_id=target if kind == "g" else None,
            )
            for n, (kind, target) in enumerate(new)
        ]
    )
    return len(new)


def _existing(model: type[Dataset] | type[DatasetGroup], ids: list[int], field: str) -> None:
    found = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise DomainError(
            f"{field}: no such ids: {', '.join(map(str, missing[:20]))}.",
            code="datasets.unknown_ids",
            details={"fields": {field: [f"Unknown: {missing[:100]}"]}, "missing": missing[:100]},
        )


@transaction.atomic
def group_append(*, group: DatasetGroup, data_sets: Any = None, groups: Any = None) -> dict[str, int]:
    """Append datasets and nested groups (ids; existing entries are kept where they are)."""
    dataset_ids, child_ids = _ids_of(data_sets, "data_sets"), _ids_of(groups, "groups")
    if not dataset_ids and not child_ids:
        raise DomainError("Give data_sets or groups to append.", code="datasets.bad_ids")
    group = _lock(group)
    _existing(Dataset, dataset_ids, "data_sets")
    _existing(DatasetGroup, child_ids, "groups")
    _check_nesting(group, child_ids)
    return {"appended": _append(group, dataset_ids, child_ids)}


@transaction.atomic
def group_append_group(*, group: DatasetGroup, other_id: Any) -> dict[str, int]:
    """Copy the other group's entries (its datasets, and its nested groups as nested groups)
    to the end of this one. Copying a group into itself, or one that nests this group, is a 400."""
    (other_pk,) = _ids_of([other_id], "group")
    _existing(DatasetGroup, [other_pk], "group")
    other = DatasetGroup.objects.get(pk=other_pk)
    if other.pk == group.pk:
        raise DomainError(
            f"Group {group.pk} cannot be appended to itself.",
            code="datasets.group_cycle",
            details={"groups": [group.pk]},
        )
    group = _lock(group)
    rows = DatasetGroupEntry.objects.filter(group=other).order_by("position")
    dataset_ids = [d for d in rows.values_list("dataset_id", flat=True) if d is not None]
    child_ids = [c for c in rows.values_list("child_id", flat=True) if c is not None]
    if group.pk in group_descendants(group_ids={other.pk}):
        raise DomainError(
            f"Group {group.pk} is nested inside group {other.pk}; appending {other.pk} would make "
            "the group contain itself.",
            code="datasets.group_cycle",
            details={"groups": [other.pk]},
        )
    _check_nesting(group, child_ids)
    return {"appended": _append(group, dataset_ids, child_ids)}


@transaction.atomic
def group_remove(*, group: DatasetGroup, data_sets: Any = None, groups: Any = None) -> dict[str, int]:
    """Remove datasets and nested groups; an id that is not an entry is a 400, nothing removed."""
    dataset_ids, child_ids = _ids_of(data_sets, "data_sets"), _ids_of(groups, "groups")
    if not dataset_ids and not child_ids:
        raise DomainError("Give data_sets or groups to remove.", code="datasets.bad_ids")
    group = _lock(group)
    rows = DatasetGroupEntry.objects.filter(group=group)
    in_ds = set(rows.filter(dataset_id__in=dataset_ids).values_list("dataset_id", flat=True))
    in_ch = set(rows.filter(child_id__in=child_ids).values_list("child_id", flat=True))
    absent_ds = [i for i in dataset_ids if i not in in_ds]
    absent_ch = [i for i in child_ids if i not in in_ch]
    if absent_ds or absent_ch:
        what = [f"datasets {', '.join(map(str, absent_ds[:20]))}"] if absent_ds else []
        what += [f"groups {', '.join(map(str, absent_ch[:20]))}"] if absent_ch else []
        raise DomainError(
            f"Not in group {group.pk}: {'; '.join(what)}.",
            code="datasets.not_in_group",
            details={"data_sets": absent_ds[:100], "groups": absent_ch[:100]},
        )
    removed, _ = rows.filter(dataset_id__in=dataset_ids).delete()
    more, _ = rows.filter(child_id__in=child_ids).delete()
    return {"removed": removed + more}
