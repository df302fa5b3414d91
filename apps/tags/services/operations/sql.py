"""Bulk tag operations on items that already have a set of the operation's kind, in SQL.

The common case of a bulk edit (replace, rename, add or remove on a curated library) needs no
per-item decision: which rows to tombstone, revive or insert follows from one predicate per
tag. Each statement here covers a whole chunk — `INSERT … SELECT` logs the changes into
`OperationChange` first, then an `UPDATE`/`INSERT … SELECT`/`DELETE` with the same predicate (or
joined to that log) writes them — so the statement count grows with the tags an operation names,
never with its items, and no assignment row travels through Python. Counters, set versions and
effective tags then follow from the chunk's log through the one writer's `assignments_settle`
(apps/tags/services/assignments.py), as they do for every other path.

The per-item paths (`apply.py`, `undo.py`) remain for what needs a decision per item: seeding
curated sets from source tags, dropping sets an operation created, and redo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.tags.models import Operation, OperationChange, TagAssignment, TagSet
from apps.tags.services.assignments import assignments_settle, tag_rows_update
from apps.tags.services.effective import Rules, effective_is_deferred
from apps.tags.services.operations.counters import new_counters, undo_counters
from apps.tags.services.sql import CHANGE_COLUMNS, rows_insert

CURRENT = TagAssignment.State.CURRENT
DELETED = TagAssignment.State.DELETED
ABSENT = OperationChange.State.ABSENT
CURATED = TagSet.Kind.CURATED

A = TagAssignment._meta.db_table
C = OperationChange._meta.db_table
S = TagSet._meta.db_table


def _in(values: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(values))


def _run(sql: str, params: Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return int(cursor.rowcount or 0)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def _max() -> str:
    """The two-argument maximum (a drifted count never goes below 0 and breaks the statement)."""
    return "GREATEST" if connection.vendor == "mysql" else "MAX"


def _stamp() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _log_columns() -> str:
    return ", ".join(CHANGE_COLUMNS)


# --- apply --------------------------------------------------------------------------------------


def apply_sets_sql(
    *,
    operation_id: int,
    spec: Any,
    item_ids: Sequence[int],
    set_ids: Sequence[int],
    actor_id: int | None,
    rules: Rules | None,
) -> dict[str, Any]:
    """Apply `spec` to these items' existing sets (`set_ids`: the sets of its kind, locked by the
    caller); returns this chunk's counters in the shape `apply_chunk` gives."""
    ids = sorted(item_ids)
    sets = sorted(set_ids)
    counters = new_counters(spec)
    counters["matched_items"] = len(ids)
    kind = spec.set_kind
    names = spec.names()
    now = _stamp()
    if spec.remove_ids:
        where = (
            f"tag_id IN ({_in(spec.remove_ids)}) AND kind = %s AND state = %s "
            f"AND media_item_id IN ({_in(ids)}) AND tagset_id IN ({_in(sets)})"
        )
        where_params = [*spec.remove_ids, kind, CURRENT, *ids, *sets]
        _run(
            f"INSERT INTO {C} ({_log_columns()}) "
            "SELECT %s, tagset_id, tag_id, media_item_id, %s, %s, position, added_via "
            f"FROM {A} WHERE {where}",
            [operation_id, CURRENT, DELETED, *where_params],
        )
        _run(
            f"UPDATE {A} SET state = %s, actor_id = %s, operation_id = %s, updated_at = %s WHERE {where}",
            [DELETED, actor_id, operation_id, now, *where_params],
        )
    if spec.add_ids:
        if spec.scoped:
            scope = [
                row[0]
                for row in _rows(
                    f"SELECT DISTINCT tagset_id FROM {C} WHERE operation_id = %s AND after_state = %s "
                    f"AND media_item_id IN ({_in(ids)}) ORDER BY tagset_id",
                    [operation_id, DELETED, *ids],
                )
            ]
        else:
            scope = sets
        if scope:
            for ref in spec.add:
                _add_one(operation_id, spec, ref, scope, kind, actor_id, now, counters)
    log = _chunk_log(operation_id, ids)
    tags = counters["tags"]
    lost: dict[int, set[int]] = defaultdict(set)
    for _set, tag_id, item_id, before, after in log:
        name = names.get(tag_id)
        if before == CURRENT and after == DELETED:
            lost[tag_id].add(item_id)
            if name:
                tags[name]["removed"] += 1
        elif after == CURRENT and name:
            tags[name]["added"] += 1
            if before == DELETED:
                tags[name]["revived"] += 1
    counters["changes"] = len(log)
    if spec.action in ("remove", "replace", "rename"):
        # Items (not sets) whose sets lost the tag, as the per-item path counts them.
        base = len(set().union(*lost.values())) if spec.scoped else len(ids)
        for ref in spec.remove:
            tags[ref.name]["unchanged"] = base - len(lost.get(ref.id or 0, ()))
    if not log:
        return counters
    changed = assignments_settle(
        log, kind=kind, rules=rules, scoped=kind == CURATED, refresh=not effective_is_deferred()
    )
    counters["items_changing"] = len(changed)
    return counters


def _chunk_log(operation_id: int, ids: Sequence[int]) -> list[tuple[int, int, int, int, int]]:
    """What an operation logged for these items: (set, tag, item, before, after) rows."""
    return [
        (int(a), int(b), int(c), int(d), int(e))
        for a, b, c, d, e in _rows(
            f"SELECT tagset_id, tag_id, media_item_id, before_state, after_state FROM {C} "
            f"WHERE operation_id = %s AND media_item_id IN ({_in(ids)})",
            [operation_id, *ids],
        )
    ]


def _scalar(sql: str, params: Sequence[Any]) -> int:
    rows = _rows(sql, params)
    return int(rows[0][0] or 0) if rows else 0


def _add_one(
    operation_id: int,
    spec: Any,
    ref: Any,
    scope: list[int],
    kind: int,
    actor_id: int | None,
    now: Any,
    counters: dict[str, Any],
) -> None:
    """One added tag over the chunk's sets in scope: count those that have it, revive (or count
    as blocked) tombstones, insert it where it is absent."""
    tag_id = ref.id
    tags = counters["tags"][ref.name]
    in_scope = f"tagset_id IN ({_in(scope)})"
    tags["unchanged"] += _scalar(
        f"SELECT COUNT(*) FROM {A} WHERE tag_id = %s AND {in_scope} AND state = %s",
        [tag_id, *scope, CURRENT],
    )
    tombstones = _rows(
        f"SELECT tagset_id, media_item_id, position, added_via FROM {A} "
        f"WHERE tag_id = %s AND {in_scope} AND state = %s ORDER BY tagset_id",
        [tag_id, *scope, DELETED],
    )
    if tombstones and not spec.revive:
        tags["blocked_by_tombstone"] += len(tombstones)
    elif tombstones:
        _revive(operation_id, spec, tag_id, tombstones, actor_id, now)
    if spec.inherit:
        # rename: the new tag takes the old one's place and origin set.
        old = spec.remove_ids[0]
        position = f"(SELECT o.position FROM {A} o WHERE o.tagset_id = c.tagset_id AND o.tag_id = {int(old)})"
        origin = (
            f"(SELECT o.origin_set_id FROM {A} o WHERE o.tagset_id = c.tagset_id AND o.tag_id = {int(old)})"
        )
    else:
        # At the end of the set, as the per-item path puts it (an empty set starts at 0).
        position = (
            f"(SELECT CASE WHEN COUNT(*) = 0 THEN 0 ELSE COALESCE(MAX(x.position), 0) + 1 END "
            f"FROM {A} x WHERE x.tagset_id = c.tagset_id)"
        )
        origin = "NULL"
    _run(
        f"INSERT INTO {C} ({_log_columns()}) "
        f"SELECT %s, s.id, %s, s.media_item_id, %s, %s, NULL, '' FROM {S} s "
        f"WHERE s.id IN ({_in(scope)}) AND NOT EXISTS "
        f"(SELECT 1 FROM {A} x WHERE x.tagset_id = s.id AND x.tag_id = %s)",
        [operation_id, tag_id, ABSENT, CURRENT, *scope, tag_id],
    )
    _run(
        f"INSERT INTO {A} (created_at, updated_at, tagset_id, tag_id, media_item_id, kind, state, "
        "position, added_via, origin_set_id, entered_tag, actor_id, operation_id, confidence) "
        f"SELECT %s, %s, c.tagset_id, c.tag_id, c.media_item_id, %s, %s, {position}, %s, {origin}, %s, %s, "
        f"c.operation_id, NULL FROM {C} c "
        "WHERE c.operation_id = %s AND c.tag_id = %s AND c.before_state = %s "
        f"AND c.tagset_id IN ({_in(scope)})",
        [
            now,
            now,
            kind,
            CURRENT,
            TagAssignment.Via.BULK,
            (ref.entered or ref.name)[:200],
            actor_id,
            operation_id,
            tag_id,
            ABSENT,
            *scope,
        ],
    )


def _revive(
    operation_id: int,
    spec: Any,
    tag_id: int,
    tombstones: list[tuple[Any, ...]],
    actor_id: int | None,
    now: Any,
) -> None:
    """Bring tombstoned rows of an added tag back (rare: computed here, written per tag)."""
    set_ids = [row[0] for row in tombstones]
    entries: list[tuple[int, tuple[Any, ...]]]
    if spec.inherit:
        old = spec.remove_ids[0]
        places = {
            s: (p, o)
            for s, p, o in _rows(
                f"SELECT tagset_id, position, origin_set_id FROM {A} "
                f"WHERE tag_id = %s AND tagset_id IN ({_in(set_ids)})",
                [old, *set_ids],
            )
        }
        entries = [(s, places.get(s, (None, None))) for s in set_ids]
        columns: tuple[str, ...] = ("position", "origin_set_id")
    else:
        top = {
            s: (m or 0) + 1
            for s, m in _rows(
                f"SELECT tagset_id, MAX(position) FROM {A} "
                f"WHERE tagset_id IN ({_in(set_ids)}) GROUP BY tagset_id",
                set_ids,
            )
        }
        entries = [(s, (top.get(s, 0),)) for s in set_ids]
        columns = ("position",)
    rows_insert(
        OperationChange,
        CHANGE_COLUMNS,
        [
            (operation_id, s, tag_id, item, DELETED, CURRENT, position, via)
            for s, item, position, via in tombstones
        ],
    )
    tag_rows_update(
        tag_id,
        entries,
        columns,
        {
            "state": CURRENT,
            "added_via": TagAssignment.Via.BULK,
            "actor_id": actor_id,
            "operation_id": operation_id,
            "updated_at": timezone.now(),
        },
    )


# --- undo ---------------------------------------------------------------------------------------


def undo_sets_sql(
    *,
    operation_id: int,
    original: Operation,
    item_ids: Sequence[int],
    actor_id: int | None,
    rules: Rules | None,
) -> dict[str, Any]:
    """Revert `original` (not itself an undo, created no set in these items) on these locked
    items: rows still as `original` left them get their before-state back, in three statements
    joined to its log; anything changed since is a conflict and stays."""
    ids = sorted(item_ids)
    orig = original.pk
    counters = undo_counters(len(ids))
    in_ids = f"c.media_item_id IN ({_in(ids)})"
    set_ids = [
        row[0]
        for row in _rows(
            f"SELECT DISTINCT tagset_id FROM {C} c WHERE c.operation_id = %s AND {in_ids} ORDER BY tagset_id",
            [orig, *ids],
        )
    ]
    if set_ids:
        list(TagSet.objects.select_for_update().filter(pk__in=set_ids).order_by("pk").values_list("pk"))
    total = _scalar(f"SELECT COUNT(*) FROM {C} c WHERE c.operation_id = %s AND {in_ids}", [orig, *ids])
    join = "a.tagset_id = c.tagset_id AND a.tag_id = c.tag_id"
    still = f"c.operation_id = %s AND {in_ids} AND a.state = c.after_state AND a.operation_id = %s"
    restored = _run(
        f"INSERT INTO {C} ({_log_columns()}) "
        "SELECT %s, c.tagset_id, c.tag_id, c.media_item_id, a.state, c.before_state, "
        "a.position, a.added_via "
        f"FROM {C} c JOIN {A} a ON {join} WHERE {still} AND c.after_state <> %s",
        [operation_id, orig, *ids, orig, ABSENT],
    )
    now = _stamp()
    via = "CASE WHEN c.before_via = '' THEN a.added_via ELSE c.before_via END"
    if connection.vendor == "mysql":
        _run(
            f"UPDATE {A} a JOIN {C} c ON {join} "
            "SET a.state = c.before_state, a.position = c.before_position, "
            f"a.added_via = {via}, a.actor_id = %s, a.operation_id = %s, a.updated_at = %s "
            f"WHERE {still} AND c.before_state <> %s AND c.after_state <> %s",
            [actor_id, operation_id, now, orig, *ids, orig, ABSENT, ABSENT],
        )
        _run(
            f"DELETE a FROM {A} a JOIN {C} c ON {join} WHERE {still} AND c.before_state = %s",
            [orig, *ids, orig, ABSENT],
        )
    else:
        _run(
            f"UPDATE {A} AS a SET state = c.before_state, position = c.before_position, "
            f"added_via = {via}, actor_id = %s, operation_id = %s, updated_at = %s FROM {C} AS c "
            f"WHERE {join} AND {still} AND c.before_state <> %s AND c.after_state <> %s",
            [actor_id, operation_id, now, orig, *ids, orig, ABSENT, ABSENT],
        )
        # Not correlated, so SQLite probes the primary key per logged pair (rows the original
        # inserted were written current, so `state = 1` is the "still as it left them" test).
        _run(
            f"DELETE FROM {A} WHERE operation_id = %s AND state = %s AND (tagset_id, tag_id) IN "
            f"(SELECT c.tagset_id, c.tag_id FROM {C} c WHERE c.operation_id = %s AND {in_ids} "
            f"AND c.before_state = %s)",
            [orig, CURRENT, orig, *ids, ABSENT],
        )
    counters["restored"] = restored
    counters["changes"] = restored
    counters["conflicts"] = total - restored
    if total > restored:
        counters["conflict_samples"] = _conflicts(operation_id, orig, ids)
    if not restored:
        return counters
    log = _chunk_log(operation_id, ids)
    kind = original.set_kind
    deferred = effective_is_deferred()
    assignments_settle(log, kind=kind, rules=rules, scoped=kind == CURATED, refresh=not deferred)
    return counters


def _conflicts(operation_id: int, orig: int, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Up to 50 changes of `orig` the undo left alone, with what the row is now and who wrote it."""
    rows = _rows(
        f"SELECT c.media_item_id, c.tag_id, c.tagset_id, a.state, a.operation_id FROM {C} c "
        f"LEFT JOIN {A} a ON a.tagset_id = c.tagset_id AND a.tag_id = c.tag_id "
        f"WHERE c.operation_id = %s AND c.media_item_id IN ({_in(ids)}) AND NOT EXISTS "
        f"(SELECT 1 FROM {C} u WHERE u.operation_id = %s "
        "AND u.tagset_id = c.tagset_id AND u.tag_id = c.tag_id) "
        "ORDER BY c.media_item_id, c.tag_id LIMIT 50",
        [orig, *ids, operation_id],
    )
    return [
        {
            "item": item,
            "tag": tag,
            "set": tagset,
            "now": "absent" if state is None else ("current" if state == CURRENT else "deleted"),
            "by": by,
        }
        for item, tag, tagset, state, by in rows
    ]
