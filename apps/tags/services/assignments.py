"""The one writer of tag assignment changes (docs/architecture.md#one-writer).

Every change to `TagAssignment` rows is a list of `Transition`s — (set, tag, item, state before
→ state after) — handed to `assignments_write`: a person's edit, a promotion, seeding a curated
set, inheritance, an import, a bulk operation's per-item path, an undo, and the mapping and
tagger writers to come. In one place it

1. locks the tag rows whose counters move, ascending id, before inserting anything (concurrent
   writers then queue on the first tag instead of deadlocking between a foreign-key check's
   shared lock and the counter update's exclusive one),
2. writes the rows: multi-row INSERTs, one UPDATE per tag (and per distinct value), DELETEs,
3. logs an `OperationChange` per transition when it belongs to an operation,
4. and settles (`assignments_settle`): each touched set's `assignment_count` and `row_version`
   (+1: an editor holding the old version gets 409), the items' effective tags (with
   `Tag.media_count` and `MediaItem.tag_count`), and `TagStat`.

The set-based SQL path of bulk operations (`operations/sql.py`) writes its rows with `INSERT …
SELECT`/`UPDATE … JOIN` statements instead of step 2 and settles through the same
`assignments_settle`; `tests/tags/test_operations_paths.py` keeps both paths equal.

New sets written whole (a mapping apply's first run on an item) take the set-based path in
`assignments_sets.py`, which belongs to this writer (same locks, counters and effective tags; one
undo record per set).

Curated sets are created and seeded (from the item's source and derived tags, source first,
then by set and position) by one path: `curated_seeds` + `curated_sets_create`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    PositiveIntegerField,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.exceptions import DomainError
from apps.tags import slots
from apps.tags.extensions import curated_changed
from apps.tags.models import OperationChange, Tag, TagAssignment, TagSet
from apps.tags.services.effective import (
    Rules,
    effective_refresh,
    effective_refresh_tags,
    rules_current,
    stats_apply,
)
from apps.tags.services.sql import CHANGE_COLUMNS, rows_insert

ABSENT = OperationChange.State.ABSENT
CURRENT = TagAssignment.State.CURRENT
DELETED = TagAssignment.State.DELETED
CURATED = TagSet.Kind.CURATED
SEEDED_KINDS = (TagSet.Kind.SOURCE, TagSet.Kind.DERIVED)
# OperationChange.before_via of every row of a curated set the operation itself created: undo
# drops such a set again when nothing else was added to it, so effective tags come back exactly.
SET_CREATED = "+set"
BATCH = 1000
PAIR_BATCH = 500
Via = TagAssignment.Via


@dataclass(frozen=True, slots=True)
class Transition:
    """One assignment changing state. `set_id` < 0 stands for the curated set this write creates
    for item `-set_id` (see `assignments_write(new_sets=…)`).

    For a row that exists, `position` None keeps its position, `via` "" keeps its `added_via`,
    and `origin_set_id` is written only with `set_origin`. `before_position`/`before_via` are
    what the log keeps for undo (SET_CREATED marks a row of a set the operation created).
    """

    set_id: int
    tag_id: int
    item_id: int
    before: int
    after: int
    position: int | None = None
    via: str = ""
    origin_set_id: int | None = None
    set_origin: bool = False
    entered: str = ""
    confidence: int | None = None
    before_position: int | None = None
    before_via: str = ""

    def extra(self) -> tuple[int | None, str, int | None]:
        """A new row's origin set, entered name and confidence (ASSIGNMENT_COLUMNS order)."""
        return (self.origin_set_id, self.entered[:200], self.confidence)


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did: transitions applied and the items whose assignments changed."""

    changes: int
    items: list[int]


@transaction.atomic
def assignments_write(
    transitions: Sequence[Transition],
    *,
    kind: int,
    operation_id: int | None,
    actor_id: int | None,
    rules: Rules | None = None,
    new_sets: Mapping[int, int] | None = None,
    drop_sets: Iterable[int] = (),
) -> Written:
    """Apply `transitions` (all in sets of one `kind`) in the caller's transaction; see the
    module docstring for what follows. `new_sets` maps item → the curated set created for it
    (for transitions with a negative `set_id`); `drop_sets` are deleted with their rows (and log
    rows) instead: their transitions count for counters and effective tags only."""
    placed = _placed(transitions, new_sets or {})
    dropped = set(drop_sets)
    tags_lock((t.tag_id for t in placed), rules)
    kept = [t for t in placed if t.set_id not in dropped]
    _rows_write(kept, kind, operation_id, actor_id)
    if operation_id is not None:
        rows_insert(
            OperationChange,
            CHANGE_COLUMNS,
            [
                (
                    operation_id,
                    t.set_id,
                    t.tag_id,
                    t.item_id,
                    t.before,
                    t.after,
                    t.before_position,
                    t.before_via,
                )
                for t in kept
            ],
        )
    if dropped:
        sets_delete(dropped)
    items = assignments_settle(
        [(t.set_id, t.tag_id, t.item_id, t.before, t.after) for t in placed],
        kind=kind,
        rules=rules,
        skip_sets=dropped,
        check_kind=True,
    )
    return Written(changes=len(placed), items=items)


def _placed(transitions: Sequence[Transition], new_sets: Mapping[int, int]) -> list[Transition]:
    """Placeholders (`set_id` < 0) replaced by the curated set created for that item."""
    return [replace(t, set_id=new_sets[-t.set_id]) if t.set_id < 0 else t for t in transitions]


def tags_lock(tag_ids: Iterable[int], rules: Rules | None = None) -> None:
    """Lock, ascending id, the tag rows whose counters a write of these tags may move: the tags,
    their alias ideals and implied ancestors (Tag.media_count follows effective tags)."""
    ids = set(tag_ids)
    if not ids or connection.vendor != "mysql":
        return  # SQLite serialises writers on the database lock
    rules = rules or rules_current()
    closure: set[int] = set()
    for tag_id in ids:
        ideal = rules.ideal.get(tag_id, tag_id)
        closure |= {tag_id, ideal, *rules.ancestors.get(ideal, ())}
    ordered = sorted(closure)
    for start in range(0, len(ordered), BATCH):
        list(
            Tag.objects.select_for_update()
            .filter(pk__in=ordered[start : start + BATCH])
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def _rows_write(
    transitions: Sequence[Transition], kind: int, operation_id: int | None, actor_id: int | None
) -> None:
    """Step 2: the statements, grouped by tag so their number follows the tags, not the items."""
    now = timezone.now()
    inserts: list[Transition] = []
    deletes: dict[int, list[int]] = defaultdict(list)
    updates: dict[tuple[int, int, str, bool, bool], list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)
    for t in transitions:
        if t.before == ABSENT and t.after != ABSENT:
            inserts.append(t)
        elif t.after == ABSENT:
            deletes[t.tag_id].append(t.set_id)
        else:
            moved = t.position is not None
            values = (*((t.position,) if moved else ()), *((t.origin_set_id,) if t.set_origin else ()))
            updates[(t.tag_id, t.after, t.via, moved, t.set_origin)].append((t.set_id, values))
    assignments_insert(
        [
            (t.set_id, t.tag_id, t.item_id, kind, t.after, t.position, t.via or Via.BULK, *t.extra())
            for t in inserts
        ],
        actor_id,
        operation_id,
    )
    for tag_id, set_ids in deletes.items():
        for start in range(0, len(set_ids), BATCH):
            TagAssignment.objects.filter(tag_id=tag_id, tagset_id__in=set_ids[start : start + BATCH]).delete()
    for (tag_id, after, via, moved, set_origin), entries in updates.items():
        columns = (*(("position",) if moved else ()), *(("origin_set_id",) if set_origin else ()))
        common: dict[str, Any] = {"state": after, "actor_id": actor_id, "operation_id": operation_id}
        if via:
            common["added_via"] = via
        tag_rows_update(tag_id, entries, columns, {**common, "updated_at": now})


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
    "confidence",
    "actor_id",
    "operation_id",
)


def assignments_insert(rows: Sequence[Sequence[Any]], actor_id: int | None, operation_id: int | None) -> None:
    """Insert rows of (set, tag, item, kind, state, position, via, origin set, entered name,
    confidence) as written by this actor and operation now."""
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    rows_insert(
        TagAssignment,
        ASSIGNMENT_COLUMNS,
        [(stamp, stamp, *row, actor_id, operation_id) for row in rows],
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


def sets_delete(set_ids: Iterable[int]) -> None:
    """Delete tag sets (and, through the ORM, what refers to them), BATCH at a time. The ORM
    clears `TagAssignment.origin_set` with `WHERE origin_set_id IN (…)`; from 200 ids on
    (`eq_range_index_dive_limit`) MariaDB estimates from that mostly-NULL column's statistics
    (cardinality 2), finds its index useless and scans the whole assignment table (10–17 s a
    statement at 3 million rows), so on MariaDB the deletes run with index dives for any list."""
    ids = sorted(set(set_ids))
    if not ids:
        return
    mysql = connection.vendor == "mysql"
    if mysql:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION eq_range_index_dive_limit = 0")
    try:
        for start in range(0, len(ids), BATCH):
            TagSet.objects.filter(pk__in=ids[start : start + BATCH]).delete()
    finally:
        if mysql:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION eq_range_index_dive_limit = DEFAULT")


# --- settling -----------------------------------------------------------------------------------

Change = tuple[int, int, int, int, int]  # (set, tag, item, before, after)


def assignments_settle(
    changes: Sequence[Change],
    *,
    kind: int,
    rules: Rules | None = None,
    skip_sets: Iterable[int] = (),
    scoped: bool = False,
    refresh: bool = True,
    check_kind: bool = False,
) -> list[int]:
    """Step 4 for changes already written: set counts and versions, effective tags, TagStat.
    Returns the items that changed. `scoped`: the items' curated sets existed before and still
    do, so only the effective tags the changed tags can produce need refreshing. Bulk chunks
    defer the counter rows (`counters_deferred`); `refresh=False` leaves effective tags to the
    caller's follow-up pass (`effective_deferred`, docs/tags.md#deferred-effective-refresh).
    `check_kind`: every set must be of `kind` (`sets_bump` proves it; DomainError otherwise)."""
    skip = set(skip_sets)
    net: dict[int, int] = defaultdict(int)
    stats: dict[tuple[int, int], int] = defaultdict(int)
    for set_id, tag_id, _item, before, after in changes:
        delta = (after == CURRENT) - (before == CURRENT)
        if set_id not in skip:
            net[set_id] += delta
        if delta:
            stats[(tag_id, kind)] += delta
    sets_bump(net, kind=kind if check_kind else None)
    if kind == TagSet.Kind.CURATED:  # label changes, for listeners above (extensions.py)
        moved: dict[int, int] = defaultdict(int)
        for _set, tag_id, _item, before, after in changes:
            if before != after:
                moved[tag_id] += 1
        curated_changed(moved)
    items = sorted({item for _set, _tag, item, _before, _after in changes})
    if items and refresh:
        tag_ids = sorted({tag for _set, tag, _item, _before, _after in changes})
        if not scoped or effective_refresh_tags(item_ids=items, tag_ids=tag_ids, rules=rules) is None:
            effective_refresh(item_ids=items, rules=rules)
    stats_apply(stats)
    return items


def sets_bump(net: Mapping[int, int], *, kind: int | None = None) -> None:
    """Per set: assignment_count += its net change, row_version + 1, one UPDATE per distinct
    change (and 5,000 sets). With `kind`, the UPDATE matches only sets of that kind and a set it
    missed is refused (`tags.set_kind_mismatch`; the caller's transaction rolls the write back):
    a tagger writer can never move rows of a curated set, nor the other way round."""
    by_net: dict[int, list[int]] = defaultdict(list)
    for tagset_id, delta in sorted(net.items()):
        by_net[delta].append(tagset_id)
    now = timezone.now()
    for delta, set_ids in by_net.items():
        for start in range(0, len(set_ids), 5000):
            chunk = set_ids[start : start + 5000]
            rows = TagSet.objects.filter(pk__in=chunk)
            if kind is not None:
                rows = rows.filter(kind=kind)
            matched = rows.update(
                assignment_count=_count_plus(delta),
                row_version=F("row_version") + 1,
                updated_at=now,
            )
            if kind is not None and matched != len(chunk):
                _kind_mismatch(chunk, kind)


def _kind_mismatch(set_ids: Sequence[int], kind: int) -> None:
    """Raise naming the sets of a write that are not of its kind (or are gone)."""
    others = dict(TagSet.objects.filter(pk__in=list(set_ids)).exclude(kind=kind).values_list("pk", "kind"))
    missing = sorted(
        set(set_ids) - set(TagSet.objects.filter(pk__in=list(set_ids)).values_list("pk", flat=True))
    )
    wanted = TagSet.Kind(kind).label
    raise DomainError(
        f"This write changes {wanted} sets only; set(s) {sorted(others)[:10] or missing[:10]} "
        f"{'are of another kind' if others else 'no longer exist'}.",
        code="tags.set_kind_mismatch",
        details={"kind": wanted, "sets": sorted(others)[:100], "missing": missing[:100]},
    )


def _count_plus(delta: int) -> Any:
    """assignment_count + delta, never below 0; the column is unsigned, so MariaDB refuses an
    intermediate negative (error 1690) before GREATEST could clamp it: compare first."""
    if delta >= 0:
        return F("assignment_count") + delta
    return Case(
        When(assignment_count__gte=-delta, then=F("assignment_count") + delta),
        default=Value(0),
        output_field=PositiveIntegerField(),
    )


def sets_recount(set_ids: Iterable[int]) -> None:
    """assignment_count counted from the rows and row_version + 1 (repairs drifted counts)."""
    ids = sorted(set(set_ids))
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


# --- curated sets: the one creating and seeding path --------------------------------------------

Seed = dict[int, tuple[int, str]]  # tag → (origin set, entered name), in seeding order


def seed_sets_q() -> Q:
    """The sets a new curated set is seeded from: source and derived sets, but not a mapping
    profile's output (a conversion for another network, docs/mappings.md, is not what the item's
    curated tags were)."""
    return Q(kind__in=SEEDED_KINDS) & ~Q(slot__startswith=slots.MAPPING_PREFIX)


def curated_seeds(*, item_ids: Sequence[int], vocabulary_id: int) -> dict[int, Seed]:
    """What each item's curated set starts with when it is created: its current source and
    derived tags (tagger output is never copied in silently, nor a mapping's output), source
    first, then by set and position, each tag once."""
    if not item_ids:
        return {}
    seed_sets = list(
        TagSet.objects.filter(
            seed_sets_q(), media_item_id__in=list(item_ids), vocabulary_id=vocabulary_id
        ).values_list("pk", flat=True)
    )
    seeds: dict[int, Seed] = {}
    if not seed_sets:
        return seeds
    for item_id, tag_id, tagset_id, entered in (
        TagAssignment.objects.filter(tagset_id__in=seed_sets, state=CURRENT)
        .order_by("media_item_id", "kind", "tagset_id", "position")
        .values_list("media_item_id", "tag_id", "tagset_id", "entered_tag")
    ):
        seeds.setdefault(item_id, {}).setdefault(tag_id, (tagset_id, entered))
    return seeds


def seed_transitions(
    item_id: int, seed: Seed, *, removed: Iterable[int] = (), logged: bool
) -> list[Transition]:
    """The rows a new curated set of `item_id` starts with (`removed` ones as tombstones), in
    the set placeholder `-item_id`. `logged`: they are an operation's own (SET_CREATED)."""
    gone = set(removed)
    return [
        Transition(
            set_id=-item_id,
            tag_id=tag_id,
            item_id=item_id,
            before=ABSENT,
            after=DELETED if tag_id in gone else CURRENT,
            position=position,
            via=Via.PROMOTE,
            origin_set_id=origin,
            entered=entered,
            before_via=SET_CREATED if logged else "",
        )
        for position, (tag_id, (origin, entered)) in enumerate(seed.items())
    ]


def curated_sets_create(
    *, item_ids: Sequence[int], vocabulary_id: int, actor_id: int | None
) -> dict[int, int]:
    """New, empty curated sets for these items → {item: set id}. Raises IntegrityError when one
    already exists (someone created it meanwhile): the caller decides whether to re-read or retry."""
    made = TagSet.objects.bulk_create(
        [
            TagSet(
                media_item_id=item_id,
                kind=CURATED,
                vocabulary_id=vocabulary_id,
                slot=slots.CURATED,
                created_by_id=actor_id,
            )
            for item_id in item_ids
        ],
        batch_size=BATCH,
    )
    if all(s.pk for s in made):
        return {s.media_item_id: s.pk for s in made}
    return dict(
        TagSet.objects.filter(
            media_item_id__in=list(item_ids), kind=CURATED, vocabulary_id=vocabulary_id, slot=slots.CURATED
        ).values_list("media_item_id", "pk")
    )
