"""Bulk tag operations, applying one chunk of items per call (docs/tags.md#bulk-operations).

Per chunk: lock the items and their sets (ascending ids, so overlapping operations serialise
instead of deadlocking). Items that already have a set of the operation's kind go through the
set-based SQL path (`sql.py`); the rest — curated sets to create and seed — are decided per
item in Python (`decide.py`) and written as transitions by the one writer
(`apps/tags/services/assignments.py`). Both paths settle through `assignments_settle`, and
`tests/tags/test_operations_paths.py` keeps them equal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.media.models import MediaItem
from apps.tags import slots
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services.assignments import (
    ABSENT,
    CURATED,
    CURRENT,
    DELETED,
    SET_CREATED,
    Seed,
    Transition,
    assignments_write,
    curated_seeds,
    curated_sets_create,
    seed_transitions,
    tags_lock,
)
from apps.tags.services.effective import Rules, counters_deferred
from apps.tags.services.operations.counters import counters_merge, new_counters
from apps.tags.services.operations.decide import Decision, decide
from apps.tags.services.operations.plan import Spec
from apps.tags.services.operations.sql import apply_sets_sql

Via = TagAssignment.Via


class ChunkRetry(Exception):
    """The chunk lost a race (e.g. someone created the same curated set); run it again."""


class _SetSql:
    """Switch for the set-based path (tests turn it off to compare both paths' results)."""

    enabled = True


SET_SQL = _SetSql()


def lock_items(item_ids: Sequence[int]) -> None:
    """Row-lock the chunk's items in ascending id: overlapping bulk operations queue here."""
    list(MediaItem.objects.select_for_update().filter(pk__in=list(item_ids)).order_by("pk").values_list("pk"))


@counters_deferred()
def apply_chunk(
    *,
    operation_id: int,
    spec: Spec,
    item_ids: Sequence[int],
    actor_id: int | None,
    rules: Rules | None = None,
) -> dict[str, Any]:
    """Apply `spec` to these items in the caller's transaction; returns this chunk's counters.

    The shared counter rows are written once, at the end (`counters_deferred`).
    """
    ids = sorted(set(item_ids))
    if not ids:
        return {**new_counters(spec), "matched_items": 0}
    lock_items(ids)
    sets_query = TagSet.objects.filter(
        media_item_id__in=ids, kind=spec.set_kind, vocabulary_id=spec.vocabulary_id
    )
    if spec.set_kind == CURATED:
        sets_query = sets_query.filter(slot=slots.CURATED)
    sets = list(sets_query.select_for_update().order_by("pk").values_list("pk", "media_item_id"))
    tags_lock([*spec.remove_ids, *spec.add_ids], rules)  # items, sets, tags: every writer's order
    if not SET_SQL.enabled or not sets:
        return apply_per_item(operation_id, spec, ids, sets, actor_id, rules)
    having = {item_id for _s, item_id in sets}
    counters = apply_sets_sql(
        operation_id=operation_id,
        spec=spec,
        item_ids=sorted(having),
        set_ids=[s for s, _i in sets],
        actor_id=actor_id,
        rules=rules,
    )
    rest = [i for i in ids if i not in having]
    if rest:
        counters = counters_merge(counters, apply_per_item(operation_id, spec, rest, [], actor_id, rules))
    return counters


# --- the per-item path --------------------------------------------------------------------------

Row = tuple[int, int | None, int | None, str]  # state, position, origin set, added_via


@dataclass
class _Chunk:
    """What the per-item path reads once per chunk, and what it decides."""

    spec: Spec
    rows: dict[tuple[int, int], Row]
    top: dict[int, int]
    seeds: dict[int, Seed]
    counters: dict[str, Any]
    transitions: list[Transition] = field(default_factory=list)
    new_set_items: list[int] = field(default_factory=list)
    changed_items: set[int] = field(default_factory=set)

    def tally(self, decision: Decision, removed_here: set[int]) -> None:
        names, tags = self.spec.names(), self.counters["tags"]
        for tag_id in decision.removed:
            tags[names[tag_id]]["removed"] += 1
            removed_here.add(tag_id)
        for tag_id, _position, _origin, revived in decision.added:
            tags[names[tag_id]]["added"] += 1
            if revived:
                tags[names[tag_id]]["revived"] += 1
        for tag_id in decision.unchanged:
            tags[names[tag_id]]["unchanged"] += 1
        for tag_id in decision.blocked:
            tags[names[tag_id]]["blocked_by_tombstone"] += 1


def _chunk_read(spec: Spec, ids: list[int], set_ids: list[int]) -> _Chunk:
    tag_ids = [*spec.remove_ids, *spec.add_ids]
    rows: dict[tuple[int, int], Row] = {}
    if set_ids and tag_ids:
        for tagset_id, tag_id, state, pos, origin_id, via in TagAssignment.objects.filter(
            tagset_id__in=set_ids, tag_id__in=tag_ids
        ).values_list("tagset_id", "tag_id", "state", "position", "origin_set_id", "added_via"):
            rows[(tagset_id, tag_id)] = (state, pos, origin_id, via)
    top: dict[int, int] = {}
    if set_ids and spec.add and not spec.inherit:
        top = {
            tagset_id: highest or 0
            for tagset_id, highest in TagAssignment.objects.filter(tagset_id__in=set_ids)
            .values("tagset_id")
            .annotate(m=Max("position"))
            .values_list("tagset_id", "m")
        }
    counters = new_counters(spec)
    counters["matched_items"] = len(ids)
    return _Chunk(spec=spec, rows=rows, top=top, seeds={}, counters=counters)


def _set_transitions(chunk: _Chunk, tagset_id: int, item_id: int, decision: Decision) -> list[Transition]:
    """An existing set's decision as transitions: tombstones, revivals, new rows."""
    spec, rows = chunk.spec, chunk.rows
    entered = {r.id: r.entered or r.name for r in spec.add}
    out = []
    for tag_id in decision.removed:
        _state, old_position, _origin, via = rows[(tagset_id, tag_id)]
        out.append(
            Transition(
                tagset_id, tag_id, item_id, CURRENT, DELETED, before_position=old_position, before_via=via
            )
        )
    for tag_id, position, origin, revived in decision.added:
        before_position, before_via = None, ""
        if revived:
            _state, before_position, _origin, before_via = rows[(tagset_id, tag_id)]
        out.append(
            Transition(
                tagset_id,
                tag_id,
                item_id,
                DELETED if revived else ABSENT,
                CURRENT,
                position=position,
                via=Via.BULK,
                origin_set_id=origin,
                set_origin=spec.inherit,
                entered=entered[tag_id],
                before_position=before_position,
                before_via=before_via,
            )
        )
    return out


def _seeded_transitions(chunk: _Chunk, item_id: int, seed: Seed, decision: Decision) -> list[Transition]:
    """A curated set to create: its seed (removed tags as tombstones) plus the added tags, all
    logged as rows of a set the operation created."""
    entered = {r.id: r.entered or r.name for r in chunk.spec.add}
    out = seed_transitions(item_id, seed, removed=decision.removed, logged=True)
    for tag_id, position, origin, _revived in decision.added:
        out.append(
            Transition(
                -item_id,
                tag_id,
                item_id,
                ABSENT,
                CURRENT,
                position=position,
                via=Via.BULK,
                origin_set_id=origin,
                entered=entered[tag_id],
                before_via=SET_CREATED,
            )
        )
    return out


def _decide_item(chunk: _Chunk, item_id: int, set_ids: Sequence[int]) -> tuple[bool, set[int]]:
    """Decide one item's sets (or the curated set it would get); (in scope, tags it lost)."""
    removed_here: set[int] = set()
    in_scope = False
    for tagset_id in set_ids:

        def state_of(tag_id: int, s: int = tagset_id) -> tuple[int, int | None, int | None] | None:
            row = chunk.rows.get((s, tag_id))
            return None if row is None else (row[0], row[1], row[2])

        decision = decide(chunk.spec, state_of, chunk.top.get(tagset_id, -1) + 1)
        if decision is None:
            continue
        in_scope = True
        chunk.tally(decision, removed_here)
        if decision.changes:
            chunk.transitions += _set_transitions(chunk, tagset_id, item_id, decision)
            chunk.changed_items.add(item_id)
    if chunk.spec.set_kind == CURATED and not set_ids:
        seed = chunk.seeds.get(item_id, {})
        seed_state = {tag_id: (CURRENT, n, origin) for n, (tag_id, (origin, _e)) in enumerate(seed.items())}
        decision = decide(chunk.spec, seed_state.get, len(seed))
        if decision is not None:
            in_scope = True
            chunk.tally(decision, removed_here)
            if decision.changes:
                chunk.transitions += _seeded_transitions(chunk, item_id, seed, decision)
                chunk.new_set_items.append(item_id)
                chunk.counters["seeded"] += len(seed)
                chunk.changed_items.add(item_id)
    return in_scope, removed_here


def apply_per_item(
    operation_id: int,
    spec: Spec,
    ids: list[int],
    sets: list[tuple[int, int]],
    actor_id: int | None,
    rules: Rules | None,
) -> dict[str, Any]:
    """The per-item path: decide each set (and each curated set to seed) in Python, then hand
    the transitions to the one writer."""
    by_item: dict[int, list[int]] = defaultdict(list)
    for tagset_id, item_id in sets:
        by_item[item_id].append(tagset_id)
    chunk = _chunk_read(spec, ids, [s for s, _ in sets])
    if spec.set_kind == CURATED:
        unseeded = [i for i in ids if i not in by_item]
        chunk.seeds = curated_seeds(item_ids=unseeded, vocabulary_id=spec.vocabulary_id)
    scope = 0
    removed_items: Counter[int] = Counter()
    for item_id in ids:
        in_scope, removed_here = _decide_item(chunk, item_id, by_item.get(item_id, ()))
        scope += in_scope
        removed_items.update(removed_here)
    counters = chunk.counters
    base = scope if spec.scoped else len(ids)
    for ref in spec.remove:
        if spec.action in ("remove", "replace", "rename"):
            counters["tags"][ref.name]["unchanged"] = base - removed_items.get(ref.id or 0, 0)
    counters["items_changing"] = len(chunk.changed_items)
    counters["sets_created"] = len(chunk.new_set_items)
    counters["changes"] = len(chunk.transitions)
    if not chunk.transitions:
        return counters
    created: dict[int, int] = {}
    if chunk.new_set_items:
        try:
            with transaction.atomic():
                created = curated_sets_create(
                    item_ids=chunk.new_set_items, vocabulary_id=spec.vocabulary_id, actor_id=actor_id
                )
        except IntegrityError as exc:  # someone created one meanwhile: decide again from it
            raise ChunkRetry from exc
    assignments_write(
        chunk.transitions,
        kind=spec.set_kind,
        operation_id=operation_id,
        actor_id=actor_id,
        rules=rules,
        new_sets=created,
    )
    return counters
