"""The one writer's set-based path for whole sets (docs/tags.md#assignment-changes): new sets
created and filled in one go, and whole sets dropped again by undo. Part of the one writer of tag
assignments (`assignments.py`): the same lock order (items by the caller, then tag rows
ascending), the same counters and effective tags, the rows in multi-row INSERTs written as SQL
text, and one `OperationSet` undo record per set instead of an `OperationChange` per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from apps.tags.models import OperationSet, TagAssignment, TagSet
from apps.tags.services.assignments import (
    ASSIGNMENT_COLUMNS,
    BATCH,
    CURATED,
    CURRENT,
    sets_delete,
    tags_lock,
)
from apps.tags.services.effective import Rules, effective_refresh, stats_apply
from apps.tags.services.sql import int_rows_insert, rows_insert

FILL_BATCH = 5000
SET_COLUMNS = (
    "created_at",
    "updated_at",
    "media_item_id",
    "kind",
    "vocabulary_id",
    "slot",
    "origin_label",
    "tagger_model",
    "tagger_version",
    "stored_threshold",
    "assignment_count",
    "row_version",
    "created_by_id",
)


def sets_create_filled(
    outputs: Mapping[int, Sequence[int]],
    *,
    kind: int,
    vocabulary_id: int,
    slot: str,
    origin_label: str,
    via: str,
    operation_id: int | None,
    actor_id: int | None,
    rules: Rules | None = None,
) -> dict[int, int]:
    """Create one set per item of `outputs` (item → tag ids in position order; the caller holds
    the items' locks and knows no such set exists) holding exactly those tags as current rows,
    and return {item: set id}. The same rows, counters and effective tags as `assignments_write`
    of the ABSENT → CURRENT transitions, written set-based: the sets with their final
    `assignment_count` in one multi-row INSERT, the rows in multi-row INSERTs of FILL_BATCH, and
    **one undo record per set** (`OperationSet`: the set and its row count) instead of an
    `OperationChange` per row; undo drops a set while every row in it is still as written here
    (docs/tags.md#operations-and-undo). `TagStat` moves by one delta per tag; effective tags are
    refreshed only for items without a curated set (a curated set is the whole base of the
    others, docs/tags.md#effective-tags)."""
    outputs = {item: list(tags) for item, tags in outputs.items() if tags}
    if not outputs:
        return {}
    per_tag: dict[int, int] = defaultdict(int)
    for tags in outputs.values():
        for tag_id in tags:
            per_tag[tag_id] += 1
    tags_lock(per_tag, rules)
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    items = sorted(outputs)
    sets = _sets_insert(
        {i: len(outputs[i]) for i in items},
        stamp=stamp,
        kind=kind,
        vocabulary_id=vocabulary_id,
        slot=slot,
        origin_label=origin_label,
        actor_id=actor_id,
    )
    # Every row's constants, and the columns each row fills: set, tag, item, position.
    constants = (stamp, stamp, None, None, None, kind, CURRENT, None, via, None, "", None, actor_id)
    int_rows_insert(
        TagAssignment,
        ASSIGNMENT_COLUMNS,
        ((*constants, operation_id), (2, 3, 4, 7)),
        ((sets[i], tag_id, i, n) for i in items for n, tag_id in enumerate(outputs[i])),
        batch=FILL_BATCH,
    )
    if operation_id is not None:
        rows_insert(
            OperationSet,
            ("operation_id", "tagset_id", "media_item_id", "rows"),
            [(operation_id, sets[i], i, len(outputs[i])) for i in items],
        )
    _effective_where_not_curated(items, rules)
    stats_apply({(tag_id, kind): n for tag_id, n in per_tag.items()})
    return sets


def _sets_insert(
    counts: Mapping[int, int],
    *,
    stamp: str | None,
    kind: int,
    vocabulary_id: int,
    slot: str,
    origin_label: str,
    actor_id: int | None,
) -> dict[int, int]:
    """Insert one set per item with its final `assignment_count`; returns {item: set id}."""
    items = sorted(counts)
    rows_insert(
        TagSet,
        SET_COLUMNS,
        [
            (
                stamp,
                stamp,
                i,
                kind,
                vocabulary_id,
                slot,
                origin_label[:200],
                "",
                "",
                1000,
                counts[i],
                1,
                actor_id,
            )
            for i in items
        ],
    )
    sets: dict[int, int] = {}
    for start in range(0, len(items), BATCH):
        sets.update(
            TagSet.objects.filter(
                media_item_id__in=items[start : start + BATCH],
                kind=kind,
                vocabulary_id=vocabulary_id,
                slot=slot,
            ).values_list("media_item_id", "pk")
        )
    return sets


def sets_drop_whole(set_ids: Sequence[int], *, kind: int, rules: Rules | None = None) -> list[int]:
    """Delete whole sets of `kind` with their rows (an undo dropping sets its operation created,
    `OperationSet`), with the counters and effective tags that follow, set-based: `TagStat` by
    one delta per tag, effective tags of the items without a curated set. Returns the items."""
    ids = sorted(set(set_ids))
    if not ids:
        return []
    per_tag: dict[int, int] = defaultdict(int)
    items: set[int] = set()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        items.update(TagSet.objects.filter(pk__in=chunk, kind=kind).values_list("media_item_id", flat=True))
        for tag_id, n in (
            TagAssignment.objects.filter(tagset_id__in=chunk, state=CURRENT)
            .order_by()
            .values("tag_id")
            .annotate(n=Count("*"))
            .values_list("tag_id", "n")
        ):
            per_tag[tag_id] += n
    tags_lock(per_tag, rules)
    for start in range(0, len(ids), BATCH):
        TagAssignment.objects.filter(tagset_id__in=ids[start : start + BATCH]).delete()
    sets_delete(ids)
    ordered = sorted(items)
    _effective_where_not_curated(ordered, rules)
    stats_apply({(tag_id, kind): -n for tag_id, n in per_tag.items()})
    return ordered


def _effective_where_not_curated(item_ids: Sequence[int], rules: Rules | None) -> None:
    """Refresh the effective tags of the items that have no curated set (for the others, a
    change outside the curated set changes nothing)."""
    curated: set[int] = set()
    for start in range(0, len(item_ids), BATCH):
        curated.update(
            TagSet.objects.filter(
                media_item_id__in=item_ids[start : start + BATCH], kind=CURATED
            ).values_list("media_item_id", flat=True)
        )
    others = [i for i in item_ids if i not in curated]
    if others:
        effective_refresh(item_ids=others, rules=rules)
