"""Adding, removing and excluding items, set-based (docs/datasets.md#membership)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.datasets.models import Dataset, DatasetItem, Subset, SubsetItem
from apps.media.models import MediaItem
from apps.search.query import search_queryset

MAX_IDS = 10_000
ACTIONS = ("add", "remove", "exclude", "unexclude")


def clean_ids(raw: Any) -> list[int]:
    """A list of distinct item ids (1..INT_MAX, at most MAX_IDS), each checked by int_param."""
    if not isinstance(raw, list) or not raw:
        raise DomainError("items: a non-empty list of item ids.", code="datasets.bad_ids")
    if len(raw) > MAX_IDS:
        raise DomainError(f"items: at most {MAX_IDS} ids per request.", code="datasets.too_many_ids")
    ids: set[int] = set()
    for value in raw:
        number = int_param(value, field="items", minimum=1)
        if number is None:  # null or "": not an id
            raise DomainError("items: every entry must be an item id.", code="datasets.bad_ids")
        ids.add(number)
    return sorted(ids)


def _existing(ids: list[int]) -> None:
    found = set(MediaItem.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise DomainError(
            f"items: no such items: {', '.join(map(str, missing[:20]))}.",
            code="datasets.unknown_items",
            details={"missing": missing[:100]},
        )


def lock_dataset(dataset_id: int) -> None:
    """Lock the dataset's row. Every write to a dataset's or its subsets' membership takes it
    first (lock order: dataset, then member rows), and so does freezing a snapshot, so a
    snapshot's parts all show one moment (docs/datasets.md#snapshots)."""
    list(Dataset.objects.select_for_update().filter(pk=dataset_id).values_list("pk", flat=True))


def _count(owner: Dataset | Subset, delta: int) -> None:
    """Move the stored explicit_count (explicit, non-excluded rows) by delta, in SQL, in the
    edit's transaction (the dataset row is locked)."""
    if delta:
        type(owner).objects.filter(pk=owner.pk).update(explicit_count=F("explicit_count") + delta)


def members_edit(*, owner: Dataset | Subset, action: str, item_ids: Any) -> dict[str, int]:
    """Apply `action` to the items of a dataset or subset; returns {"changed": n}.

    add: explicit member (clears an exclusion); remove: drop explicit membership (every id must
    be an explicit member, else 400 and nothing changes); exclude: never a member, even when the
    saved query matches; unexclude: drop the exclusion.
    """
    if action not in ACTIONS:
        raise DomainError(f"action: one of {', '.join(ACTIONS)}.", code="datasets.bad_action")
    ids = clean_ids(item_ids)
    model: type[DatasetItem] | type[SubsetItem]
    if isinstance(owner, Subset):
        model, key = SubsetItem, "subset"
    else:
        model, key = DatasetItem, "dataset"
    rows = model.objects.filter(**{key: owner})
    with transaction.atomic():
        lock_dataset(owner.dataset_id if isinstance(owner, Subset) else owner.pk)
        _existing(ids)
        if action in ("remove", "unexclude"):
            targets = rows.filter(media_item_id__in=ids, excluded=action == "unexclude")
            present = set(targets.values_list("media_item_id", flat=True))
            absent = [i for i in ids if i not in present]
            if absent:
                what = "explicit members" if action == "remove" else "excluded"
                raise DomainError(
                    f"items: not {what}: {', '.join(map(str, absent[:20]))}.",
                    code="datasets.not_members" if action == "remove" else "datasets.not_excluded",
                    details={"absent": absent[:100]},
                )
            deleted, _ = targets.delete()
            _count(owner, -deleted if action == "remove" else 0)
            return {"changed": deleted}
        excluded = action == "exclude"
        changed = rows.filter(media_item_id__in=ids).exclude(excluded=excluded).update(excluded=excluded)
        have = set(rows.filter(media_item_id__in=ids).values_list("media_item_id", flat=True))
        new = [model(**{key: owner}, media_item_id=i, excluded=excluded) for i in ids if i not in have]
        model.objects.bulk_create(new, batch_size=1000)  # type: ignore[arg-type]
        # add: flipped exclusions and new rows are explicit members now; exclude: the flipped
        # rows were explicit members, the new rows never were
        _count(owner, -changed if excluded else changed + len(new))
        return {"changed": changed + len(new)}


def members_remove_matching(*, owner: Dataset | Subset, q: str, viewer: Any = None) -> dict[str, int]:
    """Drop the explicit members that `q` matches (the `remove-images` of the API), set-based
    in one DELETE; a query that matches no explicit member is a 400 and nothing changes.
    Members that are members only through the saved query stay (edit the query or exclude)."""
    q = (q or "").strip()
    if not q:
        raise DomainError("query: a search query naming the members to remove.", code="datasets.bad_ids")
    model: type[DatasetItem] | type[SubsetItem]
    model, key = (SubsetItem, "subset") if isinstance(owner, Subset) else (DatasetItem, "dataset")
    with transaction.atomic():
        lock_dataset(owner.dataset_id if isinstance(owner, Subset) else owner.pk)
        matched = search_queryset(q=q, viewer=viewer).order_by().values("pk")
        targets = model.objects.filter(**{key: owner}, excluded=False, media_item_id__in=matched)
        deleted, _ = targets.delete()
        if not deleted:
            raise DomainError(
                f"query: {q!r} matches no explicit member; nothing removed.",
                code="datasets.not_members",
                details={"query": q},
            )
        _count(owner, -deleted)
        return {"changed": deleted}
