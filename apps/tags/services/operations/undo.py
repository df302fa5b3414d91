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

from django.db.models import Count

from apps.tags import extensions
from apps.tags.models import Operation, OperationChange, OperationTarget, TagAssignment, TagSet
from apps.tags.services.assignments import ABSENT, CURRENT, SET_CREATED, Transition, assignments_write
from apps.tags.services.curation import promote_again
from apps.tags.services.effective import Rules, counters_deferred
from apps.tags.services.operations.apply import SET_SQL, apply_chunk, lock_items
from apps.tags.services.operations.counters import undo_counters
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
    counters = undo_counters(len(ids))
    if not ids:
        return counters
    lock_items(ids)
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
