"""Bulk tag operations, writing half: one chunk of items per call, with set-based statements.

Per chunk: lock the items and their sets (ascending ids, so overlapping operations serialise
instead of deadlocking), read the before-state in one SELECT, decide in Python, then write with
a bounded number of statements (bulk INSERTs, one UPDATE per tag for revivals, one for
tombstones, bulk OperationChange rows, counter deltas) and refresh the chunk's effective tags.
The statement count grows with the number of tags an operation names, not with its items.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    PositiveIntegerField,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.media.models import MediaItem
from apps.tags import slots
from apps.tags.models import Operation, OperationChange, OperationTarget, TagAssignment, TagSet
from apps.tags.services.effective import Rules, counters_deferred, effective_refresh, stats_apply
from apps.tags.services.operations.plan import (
    CURATED,
    CURRENT,
    DELETED,
    SEEDED_KINDS,
    SET_CREATED,
    Spec,
    TagRef,
)
from apps.tags.services.operations.sql import apply_sets_sql, undo_sets_sql
from apps.tags.services.sql import CHANGE_COLUMNS, rows_insert

ABSENT = OperationChange.State.ABSENT
BATCH = 1000
PAIR_BATCH = 500
Via = TagAssignment.Via


class ChunkRetry(Exception):
    """The chunk lost a race (e.g. someone created the same curated set); run it again."""


# --- deciding -----------------------------------------------------------------------------------

StateOf = Callable[[Any], "tuple[int, int | None, int | None] | None"]


@dataclass
class Decision:
    """What one set gets: tags tombstoned, tags added (key, position, origin set, revived), and the
    added tags left alone because present or blocked by a tombstone."""

    removed: list[Any] = field(default_factory=list)
    added: list[tuple[Any, int | None, int | None, bool]] = field(default_factory=list)
    unchanged: list[Any] = field(default_factory=list)
    blocked: list[Any] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.removed or self.added)


def decide(
    spec: Spec, state_of: StateOf, next_position: int, new_key: Callable[[TagRef], Any] | None = None
) -> Decision | None:
    """The change to one set, given `state_of(tag) -> (state, position, origin_set) | None`.

    None when the set is out of scope (replace and rename touch only sets having a `from` tag).
    Additions revive tombstones unless the spec says otherwise (a person's append revives;
    docs/tags.md#tombstones).
    """

    def key(ref: TagRef) -> Any:
        if ref.id is not None:
            return ref.id
        assert new_key is not None
        return new_key(ref)

    present = []
    for ref in spec.remove:
        state = state_of(key(ref))
        if state is not None and state[0] == CURRENT:
            present.append(key(ref))
    if spec.scoped and not present:
        return None
    anchor = state_of(key(spec.remove[0])) if spec.inherit and spec.remove else None
    decision = Decision(removed=present)
    position = next_position
    for ref in spec.add:
        state = state_of(key(ref))
        if state is not None and state[0] == CURRENT:
            decision.unchanged.append(key(ref))
        elif state is not None and not spec.revive:
            decision.blocked.append(key(ref))
        elif anchor is not None:
            decision.added.append((key(ref), anchor[1], anchor[2], state is not None))
        else:
            decision.added.append((key(ref), position, None, state is not None))
            position += 1
    return decision


# --- shared writers -----------------------------------------------------------------------------


def lock_items(item_ids: Sequence[int]) -> None:
    """Row-lock the chunk's items in ascending id: overlapping bulk operations queue here."""
    list(MediaItem.objects.select_for_update().filter(pk__in=list(item_ids)).order_by("pk").values_list("pk"))


def sets_recount(set_ids: Iterable[int]) -> None:
    """assignment_count from the rows and row_version + 1 (editors holding an old version get 409)."""
    ids = sorted(set(set_ids))
    if not ids:
        return
    current = (
        TagAssignment.objects.filter(tagset_id=OuterRef("pk"), state=CURRENT)
        .order_by()
        .values("tagset_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    now = timezone.now()
    for start in range(0, len(ids), BATCH):
        TagSet.objects.filter(pk__in=ids[start : start + BATCH]).update(
            assignment_count=Coalesce(Subquery(current, output_field=IntegerField()), Value(0)),
            row_version=F("row_version") + 1,
            updated_at=now,
        )


def _stat_key_deltas(changes: Iterable[tuple[int, int, int, int]]) -> dict[tuple[int, int], int]:
    """(tag, kind, before, after) transitions → TagStat deltas (only current rows count)."""
    deltas: dict[tuple[int, int], int] = defaultdict(int)
    for tag_id, kind, before, after in changes:
        if after == CURRENT and before != CURRENT:
            deltas[(tag_id, kind)] += 1
        elif before == CURRENT and after != CURRENT:
            deltas[(tag_id, kind)] -= 1
    return deltas


def new_counters(spec: Spec | None) -> dict[str, Any]:
    names = [r.name for r in (*spec.remove, *spec.add)] if spec else []
    return {
        "matched_items": 0,
        "items_changing": 0,
        "sets_created": 0,
        "seeded": 0,
        "changes": 0,
        "tags": {
            n: {"added": 0, "removed": 0, "unchanged": 0, "blocked_by_tombstone": 0, "revived": 0}
            for n in names
        },
    }


def undo_counters(matched: int) -> dict[str, Any]:
    """An undo chunk's counters before it runs."""
    return {
        "matched_items": matched,
        "restored": 0,
        "conflicts": 0,
        "conflict_samples": [],
        "sets_removed": 0,
        "reapplied_items": 0,
        "changes": 0,
    }


def counters_merge(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add one chunk's counters to the running totals (numbers add, samples append up to 50)."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int):
            out[key] = out.get(key, 0) + value
        elif isinstance(value, dict):
            out[key] = counters_merge(out.get(key, {}), value)
        elif isinstance(value, list):
            out[key] = [*out.get(key, []), *value][:50]
        else:
            out[key] = value
    return out


# --- apply --------------------------------------------------------------------------------------


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

    Items that already have a set of the operation's kind go through the set-based SQL path
    (`operations.sql`); the rest (curated sets to seed) through the per-item path. The shared
    counter rows are written once, at the end (`counters_deferred`).
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
    if not SET_SQL.enabled or not sets:
        return _apply_per_item(operation_id, spec, ids, sets, actor_id, rules)
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
        counters = counters_merge(counters, _apply_per_item(operation_id, spec, rest, [], actor_id, rules))
    return counters


class _SetSql:
    """Switch for the set-based path (tests turn it off to compare both paths' results)."""

    enabled = True


SET_SQL = _SetSql()


def _apply_per_item(
    operation_id: int,
    spec: Spec,
    ids: list[int],
    sets: list[tuple[int, int]],
    actor_id: int | None,
    rules: Rules | None,
) -> dict[str, Any]:
    """The per-item path: decide each set (and each curated set to seed) in Python."""
    counters = new_counters(spec)
    counters["matched_items"] = len(ids)
    kind, curated = spec.set_kind, spec.set_kind == CURATED
    names = spec.names()
    entered = {r.id: r.entered or r.name for r in spec.add}
    by_item: dict[int, list[int]] = defaultdict(list)
    for tagset_id, item_id in sets:
        by_item[item_id].append(tagset_id)
    set_ids = [s for s, _ in sets]
    tag_ids = [*spec.remove_ids, *spec.add_ids]
    rows: dict[tuple[int, int], tuple[int, int | None, int | None, str]] = {}
    if set_ids and tag_ids:
        for tagset_id, tag_id, state, pos, origin_id, via in TagAssignment.objects.filter(
            tagset_id__in=set_ids, tag_id__in=tag_ids
        ).values_list("tagset_id", "tag_id", "state", "position", "origin_set_id", "added_via"):
            rows[(tagset_id, tag_id)] = (state, pos, origin_id, via)
    top: dict[int, int] = {}
    if set_ids and spec.add and not spec.inherit:
        for tagset_id, highest in (
            TagAssignment.objects.filter(tagset_id__in=set_ids)
            .values("tagset_id")
            .annotate(m=Max("position"))
            .values_list("tagset_id", "m")
        ):
            top[tagset_id] = highest or 0
    seeds = _seeds(spec, [i for i in ids if i not in by_item]) if curated else {}

    inserts: list[list[Any]] = []
    new_sets: dict[int, list[list[Any]]] = {}
    revive: dict[int, list[tuple[int, int | None, int | None]]] = defaultdict(list)
    tombstone_sets: set[int] = set()
    changes: list[tuple[Any, int, int, int, int, int | None, str]] = []
    touched: set[int] = set()
    changed_items: set[int] = set()
    tags = counters["tags"]

    def count(decision: Decision, removed_here: set[int]) -> None:
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

    scope = 0
    removed_items: Counter[int] = Counter()
    for item_id in ids:
        removed_here: set[int] = set()
        in_scope = False
        for tagset_id in by_item.get(item_id, ()):

            def state_of(tag_id: int, s: int = tagset_id) -> tuple[int, int | None, int | None] | None:
                row = rows.get((s, tag_id))
                return None if row is None else (row[0], row[1], row[2])

            decision = decide(spec, state_of, top.get(tagset_id, -1) + 1)
            if decision is None:
                continue
            in_scope = True
            count(decision, removed_here)
            for tag_id in decision.removed:
                _state, old_position, _origin, via = rows[(tagset_id, tag_id)]
                changes.append((tagset_id, tag_id, item_id, CURRENT, DELETED, old_position, via))
                tombstone_sets.add(tagset_id)
            for tag_id, position, origin, revived in decision.added:
                if revived:
                    _state, before_position, _origin, via = rows[(tagset_id, tag_id)]
                    revive[tag_id].append((tagset_id, position, origin))
                    changes.append((tagset_id, tag_id, item_id, DELETED, CURRENT, before_position, via))
                else:
                    inserts.append(
                        _row(
                            tagset_id,
                            tag_id,
                            item_id,
                            kind,
                            CURRENT,
                            position,
                            Via.BULK,
                            origin,
                            entered[tag_id],
                        )
                    )
                    changes.append((tagset_id, tag_id, item_id, ABSENT, CURRENT, None, ""))
            if decision.changes:
                touched.add(tagset_id)
                changed_items.add(item_id)
        if curated and item_id not in by_item:
            seed = seeds.get(item_id, {})
            seed_state = {
                tag_id: (CURRENT, n, origin) for n, (tag_id, (origin, _e)) in enumerate(seed.items())
            }
            decision = decide(spec, seed_state.get, len(seed))
            if decision is not None:
                in_scope = True
                count(decision, removed_here)
                if decision.changes:
                    new_rows = []
                    for seed_position, (tag_id, (seed_origin, seed_entered)) in enumerate(seed.items()):
                        state = DELETED if tag_id in decision.removed else CURRENT
                        new_rows.append(
                            _row(
                                0,
                                tag_id,
                                item_id,
                                kind,
                                state,
                                seed_position,
                                Via.PROMOTE,
                                seed_origin,
                                seed_entered,
                            )
                        )
                        changes.append((-item_id, tag_id, item_id, ABSENT, state, None, SET_CREATED))
                    for tag_id, position, origin, _revived in decision.added:
                        new_rows.append(
                            _row(
                                0, tag_id, item_id, kind, CURRENT, position, Via.BULK, origin, entered[tag_id]
                            )
                        )
                        changes.append((-item_id, tag_id, item_id, ABSENT, CURRENT, None, SET_CREATED))
                    new_sets[item_id] = new_rows
                    counters["seeded"] += len(seed)
                    changed_items.add(item_id)
        if in_scope:
            scope += 1
        removed_items.update(removed_here)
    base = scope if spec.scoped else len(ids)
    for ref in spec.remove:
        if spec.action in ("remove", "replace", "rename"):
            tags[ref.name]["unchanged"] = base - removed_items.get(ref.id or 0, 0)
    counters["items_changing"] = len(changed_items)
    counters["sets_created"] = len(new_sets)
    counters["changes"] = len(changes)
    if not changes:
        return counters

    now = timezone.now()
    created = _curated_sets_create(spec, list(new_sets), actor_id) if new_sets else {}
    for item_id, new_rows in new_sets.items():
        for row in new_rows:
            row[0] = created[item_id]
        inserts.extend(new_rows)
    assignments_insert(inserts, actor_id, operation_id)
    common = {"state": CURRENT, "added_via": Via.BULK, "actor_id": actor_id, "operation_id": operation_id}
    for tag_id, entries in revive.items():
        if spec.inherit:
            tag_rows_update(
                tag_id,
                [(s, (p, o)) for s, p, o in entries],
                ("position", "origin_set_id"),
                {**common, "updated_at": now},
            )
        else:
            tag_rows_update(
                tag_id, [(s, (p,)) for s, p, _o in entries], ("position",), {**common, "updated_at": now}
            )
    if tombstone_sets:
        TagAssignment.objects.filter(
            tagset_id__in=sorted(tombstone_sets), tag_id__in=spec.remove_ids, state=CURRENT
        ).update(state=DELETED, actor_id=actor_id, operation_id=operation_id, updated_at=now)
    rows_insert(
        OperationChange,
        CHANGE_COLUMNS,
        [
            (operation_id, created[-key] if key < 0 else key, tag_id, item_id, before, after, position, via)
            for key, tag_id, item_id, before, after, position, via in changes
        ],
    )
    sets_recount([*touched, *created.values()])
    effective_refresh(item_ids=sorted(changed_items), rules=rules)
    stats_apply(_stat_key_deltas((c[1], kind, c[3], c[4]) for c in changes))
    return counters


def _row(
    tagset_id: int,
    tag_id: int,
    item_id: int,
    kind: int,
    state: int,
    position: int | None,
    via: str,
    origin: int | None,
    entered: str,
) -> list[Any]:
    """A new assignment's values, in ASSIGNMENT_COLUMNS order after the timestamps."""
    return [tagset_id, tag_id, item_id, kind, state, position, via, origin, entered[:200]]


ASSIGNMENT_COLUMNS = (
    "created_at",
    "updated_at",
    "tagset_id",
    "tag_id",
    "media_item_id",
    "kind",
    "state",
    "position",
    "added_via",
    "origin_set_id",
    "entered_tag",
    "actor_id",
    "operation_id",
    "confidence",
)


def tag_rows_update(
    tag_id: int,
    entries: Sequence[tuple[int, tuple[Any, ...]]],
    columns: Sequence[str],
    common: dict[str, Any],
) -> None:
    """UPDATE one tag's assignments in many sets: `common` values everywhere, `columns` per set.

    Sets sharing their values (usually: the same position everywhere) share one statement per
    1,000 sets; when values scatter, a CASE per column covers 500 sets per statement.
    """
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for tagset_id, values in entries:
        groups[values].append(tagset_id)
    if len(groups) <= 16:
        for values, tagset_ids in groups.items():
            for start in range(0, len(tagset_ids), BATCH):
                TagAssignment.objects.filter(
                    tag_id=tag_id, tagset_id__in=tagset_ids[start : start + BATCH]
                ).update(**common, **dict(zip(columns, values, strict=True)))
        return
    for start in range(0, len(entries), PAIR_BATCH):
        batch = entries[start : start + PAIR_BATCH]
        per_set = {
            column: Case(
                *[When(tagset_id=s, then=Value(values[n])) for s, values in batch],
                output_field=PositiveIntegerField() if column == "position" else IntegerField(),
            )
            for n, column in enumerate(columns)
        }
        TagAssignment.objects.filter(tag_id=tag_id, tagset_id__in=[s for s, _v in batch]).update(
            **common, **per_set
        )


def assignments_insert(rows: Sequence[list[Any]], actor_id: int | None, operation_id: int) -> None:
    """Insert `_row` values as assignments written by this actor and operation now."""
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    rows_insert(
        TagAssignment,
        ASSIGNMENT_COLUMNS,
        [(stamp, stamp, *row, actor_id, operation_id, None) for row in rows],
    )


def _seeds(spec: Spec, item_ids: Sequence[int]) -> dict[int, dict[int, tuple[int, str]]]:
    """Per item without a curated set: tag → (origin set, entered name), in the order
    `tag_set_curated_get_or_create` would copy them (source before derived, set, position)."""
    if not item_ids:
        return {}
    seed_sets = list(
        TagSet.objects.filter(
            media_item_id__in=list(item_ids), kind__in=SEEDED_KINDS, vocabulary_id=spec.vocabulary_id
        ).values_list("pk", flat=True)
    )
    seeds: dict[int, dict[int, tuple[int, str]]] = {}
    if not seed_sets:
        return seeds
    for item_id, tag_id, tagset_id, entered in (
        TagAssignment.objects.filter(tagset_id__in=seed_sets, state=CURRENT)
        .order_by("media_item_id", "kind", "tagset_id", "position")
        .values_list("media_item_id", "tag_id", "tagset_id", "entered_tag")
    ):
        seeds.setdefault(item_id, {}).setdefault(tag_id, (tagset_id, entered))
    return seeds


def _curated_sets_create(spec: Spec, item_ids: list[int], actor_id: int | None) -> dict[int, int]:
    """New (empty) curated sets for these items → {item: set id}; a set someone else created in
    the meantime makes the chunk run again (it must then seed from nothing)."""
    try:
        with transaction.atomic():
            made = TagSet.objects.bulk_create(
                [
                    TagSet(
                        media_item_id=item_id,
                        kind=CURATED,
                        vocabulary_id=spec.vocabulary_id,
                        slot=slots.CURATED,
                        created_by_id=actor_id,
                    )
                    for item_id in item_ids
                ],
                batch_size=BATCH,
            )
    except IntegrityError as exc:
        raise ChunkRetry from exc
    if all(s.pk for s in made):
        return {s.media_item_id: s.pk for s in made}
    return dict(
        TagSet.objects.filter(
            media_item_id__in=item_ids, kind=CURATED, vocabulary_id=spec.vocabulary_id, slot=slots.CURATED
        ).values_list("media_item_id", "pk")
    )


# --- undo ---------------------------------------------------------------------------------------


@counters_deferred()
def undo_chunk(
    *,
    operation_id: int,
    original: Operation,
    item_ids: Sequence[int],
    actor_id: int | None,
    rules: Rules | None = None,
    root_spec: Spec | None = None,
) -> dict[str, Any]:
    """Revert `original` on these items: an assignment still as `original` left it (same state,
    last written by it) gets its before-state, position and added_via back; anything changed
    since is a conflict and stays (the later edit wins). A curated set `original` created is
    dropped again when nothing else was put in it. Redo (undoing an undo) re-applies the root
    operation to items whose set the undo had dropped."""
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
    changes = list(
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
    set_ids = sorted({c[0] for c in changes})
    kinds = dict(
        TagSet.objects.select_for_update().filter(pk__in=set_ids).order_by("pk").values_list("pk", "kind")
    )
    tag_ids = sorted({c[1] for c in changes})
    rows: dict[tuple[int, int], tuple[int, int | None, str, int | None]] = {}
    if set_ids:
        query = TagAssignment.objects.filter(tagset_id__in=set_ids)
        if len(tag_ids) <= BATCH:
            query = query.filter(tag_id__in=tag_ids)
        for tagset_id, tag_id, state, position, via, op in query.values_list(
            "tagset_id", "tag_id", "state", "position", "added_via", "operation_id"
        ):
            rows[(tagset_id, tag_id)] = (state, position, via, op)
    restorable: list[tuple[Any, ...]] = []
    conflicts: list[tuple[Any, ...]] = []
    for change in changes:
        current = rows.get((change[0], change[1]))
        after = change[4]
        if after == ABSENT:
            ok = current is None
        else:
            ok = current is not None and current[0] == after and current[3] == original.pk
        (restorable if ok else conflicts).append(change)
    droppable = _droppable_sets(changes, restorable, conflicts, rows)
    counters["conflicts"] = len(conflicts)
    counters["conflict_samples"] = [
        {
            "item": c[2],
            "tag": c[1],
            "set": c[0],
            "now": _state_name(rows.get((c[0], c[1]))),
            "by": _by(rows, c),
        }
        for c in conflicts[:50]
    ]
    now = timezone.now()
    transitions: list[tuple[int, int, int, int]] = []
    deletes: dict[int, list[int]] = defaultdict(list)
    inserts: list[list[Any]] = []
    updates: dict[tuple[int, int, str], list[tuple[int, int | None]]] = defaultdict(list)
    logged: list[tuple[Any, ...]] = []
    dropped_items: set[int] = set()
    affected: set[int] = set()
    for tagset_id, tag_id, item_id, before, _after, position, via in restorable:
        current = rows.get((tagset_id, tag_id))
        now_state = ABSENT if current is None else current[0]
        transitions.append((tag_id, kinds.get(tagset_id, CURATED), now_state, before))
        affected.add(item_id)
        counters["restored"] += 1
        if tagset_id in droppable:
            dropped_items.add(item_id)
            continue
        logged.append(
            (
                operation_id,
                tagset_id,
                tag_id,
                item_id,
                now_state,
                before,
                None if current is None else current[1],
                "" if current is None else current[2],
            )
        )
        if before == ABSENT:
            deletes[tag_id].append(tagset_id)
        elif current is None:
            inserts.append(
                _row(
                    tagset_id, tag_id, item_id, kinds[tagset_id], before, position, via or Via.BULK, None, ""
                )
            )
        else:
            updates[(tag_id, before, via or current[2])].append((tagset_id, position))
    # Grouped by tag: one statement per tag (and 1,000 sets), however many items the chunk has.
    for tag_id, tagset_ids in deletes.items():
        for start in range(0, len(tagset_ids), BATCH):
            TagAssignment.objects.filter(
                tag_id=tag_id, tagset_id__in=tagset_ids[start : start + BATCH]
            ).delete()
    assignments_insert(inserts, actor_id, operation_id)
    for (tag_id, state, via), entries in updates.items():
        tag_rows_update(
            tag_id,
            [(s, (p,)) for s, p in entries],
            ("position",),
            {
                "state": state,
                "added_via": via,
                "actor_id": actor_id,
                "operation_id": operation_id,
                "updated_at": now,
            },
        )
    rows_insert(OperationChange, CHANGE_COLUMNS, logged)
    if droppable:
        # OperationChange rows of a dropped set go with it (FK cascade); the undo remembers the
        # items as its targets so that a redo knows to re-create their sets.
        OperationTarget.objects.bulk_create(
            [OperationTarget(operation_id=operation_id, media_item_id=i) for i in sorted(dropped_items)],
            ignore_conflicts=True,
        )
        TagSet.objects.filter(pk__in=sorted(droppable)).delete()
        counters["sets_removed"] = len(droppable)
    sets_recount(s for s in set_ids if s not in droppable and s in kinds)
    counters["changes"] = len(logged)
    if original.kind == Operation.Kind.UNDO and root_spec is not None:
        again = list(
            OperationTarget.objects.filter(operation_id=original.pk, media_item_id__in=ids).values_list(
                "media_item_id", flat=True
            )
        )
        if again:
            redo = apply_chunk(
                operation_id=operation_id, spec=root_spec, item_ids=again, actor_id=actor_id, rules=rules
            )
            counters["reapplied_items"] = redo["items_changing"]
            counters["changes"] += redo["changes"]
    if affected:
        effective_refresh(item_ids=sorted(affected), rules=rules)
    stats_apply(_stat_key_deltas(transitions))
    return counters


def _droppable_sets(
    changes: list[tuple[Any, ...]],
    restorable: list[tuple[Any, ...]],
    conflicts: list[tuple[Any, ...]],
    rows: dict[tuple[int, int], tuple[Any, ...]],
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


def _state_name(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "absent"
    return "current" if row[0] == CURRENT else "deleted"


def _by(rows: dict[tuple[int, int], tuple[Any, ...]], change: tuple[Any, ...]) -> int | None:
    row = rows.get((change[0], change[1]))
    return None if row is None else row[3]
