"""Bulk tag operations, undoing one chunk of items per call (docs/tags.md#operations-and-undo).

An assignment still as the undone operation left it (same state, last written by it) gets its
before-state, position and added_via back; anything changed since is a conflict and stays (the
later edit wins). A curated set the operation created is dropped again when nothing else was
put in it. Redo (undoing an undo) re-applies the root operation to items whose set the undo had
dropped. The common case — no set created in the chunk, not a redo — runs set-based
(`sql.undo_sets_sql`); the rest is decided here and written by the one writer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Q

from apps.tags import extensions
from apps.tags.models import (
    Operation,
    OperationChange,
    OperationSet,
    OperationTarget,
    TagAssignment,
    TagSet,
)
from apps.tags.services.assignments import (
    ABSENT,
    CURRENT,
    SET_CREATED,
    Transition,
    assignments_write,
)
from apps.tags.services.assignments_sets import sets_drop_whole
from apps.tags.services.curation import promote_again
from apps.tags.services.effective import Rules, counters_deferred
from apps.tags.services.operations.apply import SET_SQL, apply_chunk, lock_items
from apps.tags.services.operations.counters import counters_merge, undo_counters
from apps.tags.services.operations.plan import Spec
from apps.tags.services.operations.sql import undo_sets_sql

Via = TagAssignment.Via
BATCH = 1000
LoggedChange = tuple[int, int, int, int, int, int | None, str]  # set, tag, item, before, after, pos, via
Row = tuple[int, int | None, str, int | None]  # state, position, added_via, operation


@counters_deferred()
def undo_chunk(
    *,
    operation_id: int,
    original: Operation,
    item_ids: Sequence[int],
    actor_id: int | None,
    rules: Rules | None = None,
    root_spec: Spec | None = None,
    root: Operation | None = None,
) -> dict[str, Any]:
    """Revert `original` on these items in the caller's transaction; returns the chunk's counters.
    For a redo, `root` is the operation the undo chain started from (`root_spec` its spec)."""
    ids = sorted(set(item_ids))
    if not ids:
        return undo_counters(0)
    lock_items(ids)
    whole = _whole_sets_undo(operation_id, original, ids, actor_id, rules)
    if original.kind != Operation.Kind.UNDO and not (
        OperationChange.objects.filter(operation_id=original.pk, media_item_id__in=ids).exists()
    ):
        return counters_merge(undo_counters(len(ids)), whole)
    rest = _logged_undo(operation_id, original, ids, actor_id, rules, root_spec, root)
    return counters_merge(rest, whole)


def _logged_undo(
    operation_id: int,
    original: Operation,
    ids: list[int],
    actor_id: int | None,
    rules: Rules | None,
    root_spec: Spec | None,
    root: Operation | None,
) -> dict[str, Any]:
    """Revert the changes `original` logged row by row (`OperationChange`) on these items."""
    counters = undo_counters(len(ids))
    if (
        SET_SQL.enabled
        and original.kind != Operation.Kind.UNDO
        and not OperationChange.objects.filter(
            operation_id=original.pk, media_item_id__in=ids, before_via=SET_CREATED
        ).exists()
    ):
        return undo_sets_sql(
            operation_id=operation_id, original=original, item_ids=ids, actor_id=actor_id, rules=rules
        )
    changes: list[LoggedChange] = list(
        OperationChange.objects.filter(operation_id=original.pk, media_item_id__in=ids).values_list(
            "tagset_id",
            "tag_id",
            "media_item_id",
            "before_state",
            "after_state",
            "before_position",
            "before_via",
        )
    )
    rows = _rows_now(changes)
    restorable = [c for c in changes if _still_as_left(c, rows.get((c[0], c[1])), original.pk)]
    conflicts = [c for c in changes if not _still_as_left(c, rows.get((c[0], c[1])), original.pk)]
    droppable = _droppable_sets(changes, restorable, conflicts, rows)
    counters["conflicts"] = len(conflicts)
    counters["conflict_samples"] = [_conflict(c, rows.get((c[0], c[1]))) for c in conflicts[:50]]
    transitions = [_restore(c, rows.get((c[0], c[1]))) for c in restorable]
    dropped_items = sorted({t.item_id for t in transitions if t.set_id in droppable})
    if dropped_items:
        # The undo remembers these items as its targets so that a redo re-creates their sets.
        OperationTarget.objects.bulk_create(
            [OperationTarget(operation_id=operation_id, media_item_id=i) for i in dropped_items],
            ignore_conflicts=True,
        )
    assignments_write(
        transitions,
        kind=original.set_kind,
        operation_id=operation_id,
        actor_id=actor_id,
        rules=rules,
        drop_sets=droppable,
    )
    counters["restored"] = len(transitions)
    counters["sets_removed"] = len(droppable)
    counters["changes"] = sum(1 for t in transitions if t.set_id not in droppable)
    if original.kind == Operation.Kind.UNDO and root is not None:
        _redo(counters, operation_id, original, ids, root, root_spec, actor_id, rules)
    return counters


def _whole_sets_undo(
    operation_id: int, original: Operation, ids: list[int], actor_id: int | None, rules: Rules | None
) -> dict[str, Any]:
    """Revert the sets `original` created whole (`OperationSet`: a set and its row count) on
    these items. A set whose every row is still as the operation wrote it (current, last written
    by it, as many as it wrote) is dropped, set-based; in any other, the rows still as written
    are removed and the rest count as conflicts (the later edit wins). Returns counters to add."""
    records = {
        tagset_id: (item_id, rows)
        for tagset_id, item_id, rows in OperationSet.objects.filter(
            operation_id=original.pk, media_item_id__in=ids
        ).values_list("tagset_id", "media_item_id", "rows")
    }
    if not records:
        return {}
    set_ids = sorted(records)
    list(TagSet.objects.select_for_update().filter(pk__in=set_ids).order_by("pk").values_list("pk"))
    tally: dict[int, tuple[int, int]] = {}
    for start in range(0, len(set_ids), BATCH):
        for tagset_id, total, own in (
            TagAssignment.objects.filter(tagset_id__in=set_ids[start : start + BATCH])
            .order_by()
            .values("tagset_id")
            .annotate(
                total=Count("*"),
                own=Count("tag_id", filter=Q(operation_id=original.pk, state=CURRENT)),
            )
            .values_list("tagset_id", "total", "own")
        ):
            tally[tagset_id] = (total, own)
    droppable = [s for s in set_ids if tally.get(s, (0, 0)) == (records[s][1], records[s][1])]
    spoiled = [s for s in set_ids if s not in set(droppable)]
    transitions: list[Transition] = []
    samples: list[dict[str, Any]] = []
    conflicts = 0
    for start in range(0, len(spoiled), BATCH):
        chunk = spoiled[start : start + BATCH]
        for tagset_id, tag_id, item_id, state, position, via, op in TagAssignment.objects.filter(
            tagset_id__in=chunk
        ).values_list(
            "tagset_id", "tag_id", "media_item_id", "state", "position", "added_via", "operation_id"
        ):
            if op == original.pk and state == CURRENT:
                transitions.append(
                    Transition(
                        tagset_id,
                        tag_id,
                        item_id,
                        CURRENT,
                        ABSENT,
                        before_position=position,
                        before_via=via,
                    )
                )
            elif len(samples) < 50:
                now = "current" if state == CURRENT else "deleted"
                samples.append({"item": item_id, "tag": tag_id, "set": tagset_id, "now": now, "by": op})
        conflicts += sum(records[s][1] - tally.get(s, (0, 0))[1] for s in chunk)
    if droppable:
        # The undo remembers these items as its targets so that a redo re-creates their sets.
        OperationTarget.objects.bulk_create(
            [OperationTarget(operation_id=operation_id, media_item_id=records[s][0]) for s in droppable],
            ignore_conflicts=True,
            batch_size=BATCH,
        )
        sets_drop_whole(droppable, kind=original.set_kind, rules=rules)
    if transitions:
        assignments_write(
            transitions, kind=original.set_kind, operation_id=operation_id, actor_id=actor_id, rules=rules
        )
    return {
        "restored": sum(records[s][1] for s in droppable) + len(transitions),
        "sets_removed": len(droppable),
        "changes": len(transitions),
        "conflicts": conflicts,
        "conflict_samples": samples,
    }


def _rows_now(changes: Sequence[LoggedChange]) -> dict[tuple[int, int], Row]:
    """The logged sets' rows of the logged tags as they are now (sets locked, ascending)."""
    set_ids = sorted({c[0] for c in changes})
    if not set_ids:
        return {}
    list(TagSet.objects.select_for_update().filter(pk__in=set_ids).order_by("pk").values_list("pk"))
    tag_ids = sorted({c[1] for c in changes})
    query = TagAssignment.objects.filter(tagset_id__in=set_ids)
    if len(tag_ids) <= BATCH:
        query = query.filter(tag_id__in=tag_ids)
    return {
        (tagset_id, tag_id): (state, position, via, op)
        for tagset_id, tag_id, state, position, via, op in query.values_list(
            "tagset_id", "tag_id", "state", "position", "added_via", "operation_id"
        )
    }


def _still_as_left(change: LoggedChange, row: Row | None, original_id: int) -> bool:
    if change[4] == ABSENT:
        return row is None
    return row is not None and row[0] == change[4] and row[3] == original_id


def _restore(change: LoggedChange, row: Row | None) -> Transition:
    """The transition back to the logged before-state (its position and added_via)."""
    tagset_id, tag_id, item_id, before, _after, position, via = change
    return Transition(
        tagset_id,
        tag_id,
        item_id,
        ABSENT if row is None else row[0],
        before,
        position=position,
        via=via or (row[2] if row is not None else Via.BULK),
        before_position=None if row is None else row[1],
        before_via="" if row is None else row[2],
    )


def _droppable_sets(
    changes: list[LoggedChange],
    restorable: list[LoggedChange],
    conflicts: list[LoggedChange],
    rows: dict[tuple[int, int], Row],
) -> set[int]:
    """Curated sets the operation created whose every row is its own and restorable."""
    created = {c[0] for c in changes if c[6] == SET_CREATED}
    if not created:
        return set()
    spoiled = {c[0] for c in conflicts}
    totals = dict(
        TagAssignment.objects.filter(tagset_id__in=sorted(created))
        .values("tagset_id")
        .annotate(n=Count("*"))
        .values_list("tagset_id", "n")
    )
    own = Counter(c[0] for c in restorable if c[0] in created and (c[0], c[1]) in rows)
    return {s for s in created if s not in spoiled and totals.get(s, 0) == own.get(s, 0)}


def _conflict(change: LoggedChange, row: Row | None) -> dict[str, Any]:
    now = "absent" if row is None else ("current" if row[0] == CURRENT else "deleted")
    return {
        "item": change[2],
        "tag": change[1],
        "set": change[0],
        "now": now,
        "by": None if row is None else row[3],
    }


def _redo(
    counters: dict[str, Any],
    operation_id: int,
    original: Operation,
    ids: list[int],
    root: Operation,
    root_spec: Spec | None,
    actor_id: int | None,
    rules: Rules | None,
) -> None:
    """Undoing an undo: re-apply the root operation where the undo had dropped a set (a bulk
    operation by its spec, a promotion by promoting again, another app's operation by the redo
    handler it registered in apps/tags/extensions.py)."""
    again = list(
        OperationTarget.objects.filter(operation_id=original.pk, media_item_id__in=ids).values_list(
            "media_item_id", flat=True
        )
    )
    if not again:
        return
    if root_spec is not None:
        redo = apply_chunk(
            operation_id=operation_id, spec=root_spec, item_ids=again, actor_id=actor_id, rules=rules
        )
        counters["reapplied_items"] = redo["items_changing"]
        counters["changes"] += redo["changes"]
    elif root.kind == Operation.Kind.PROMOTE:
        changed = promote_again(operation=Operation.objects.get(pk=operation_id), params=root.params)
        counters["reapplied_items"] = int(changed > 0)
        counters["changes"] += changed
    elif (handler := extensions.redo_handler(root.kind)) is not None:  # e.g. a mapping apply
        changed = handler(root=root, operation_id=operation_id, item_ids=again, actor_id=actor_id)
        counters["reapplied_items"] = len(again) if changed else 0
        counters["changes"] += changed
