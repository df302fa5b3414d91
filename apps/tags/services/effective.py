"""Effective tags: what search and export read (docs/tags.md#effective-tags).

Per item, the base is its current curated tags when it has a curated set, otherwise its source,
derived and tagger tags (tagger ones at or above the vocabulary's threshold). Aliases map each
base tag to its ideal; implications add every ancestor (marked implied unless also in the base).
Edits refresh their items in the same transaction; rule changes mark items stale and a job
rebuilds them in id order, REBUILD_CHUNK (5,000) items per transaction.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Max, Min, Value, When

from apps.media.models import MediaItem
from apps.tags.models import (
    AliasResolution,
    EffectiveTag,
    Tag,
    TagAlias,
    TagAssignment,
    TagClosure,
    TagImplication,
    TagSet,
    TagStat,
    Vocabulary,
)
from apps.tags.services.item_types import item_types_refresh
from apps.tags.services.sql import column_add, int_rows_insert, rows_insert

REBUILD_CHUNK = 5000


@dataclass
class Rules:
    """Alias and closure maps at one state of the rules (cached per process by signature)."""

    signature: tuple[Any, ...]
    ideal: dict[int, int] = field(default_factory=dict)
    ancestors: dict[int, set[int]] = field(default_factory=dict)
    _reverse: tuple[dict[int, set[int]], dict[int, set[int]]] | None = None

    def sources(self, tag_id: int) -> tuple[set[int], set[int]]:
        """The stored tags that make `tag_id` effective: directly (itself unless aliased away,
        and its antecedents) and as an implication (its descendants and their antecedents)."""
        if self._reverse is None:
            antecedents: dict[int, set[int]] = defaultdict(set)
            for antecedent, ideal in self.ideal.items():
                antecedents[ideal].add(antecedent)
            descendants: dict[int, set[int]] = defaultdict(set)
            for descendant, ancestors in self.ancestors.items():
                for ancestor in ancestors:
                    descendants[ancestor].add(descendant)
            self._reverse = (antecedents, descendants)
        antecedents, descendants = self._reverse

        def reading_as(ideal: int) -> set[int]:
            own = {ideal} if self.ideal.get(ideal, ideal) == ideal else set()
            return own | antecedents.get(ideal, set())

        direct = reading_as(tag_id)
        implied: set[int] = set()
        for descendant in descendants.get(tag_id, ()):
            implied |= reading_as(descendant)
        return direct, implied - direct


_cache_lock = threading.Lock()
_cached: Rules | None = None


def _signature() -> tuple[Any, ...]:
    aliases = TagAlias.objects.aggregate(n=Count("id"), at=Max("updated_at"))
    implications = TagImplication.objects.aggregate(n=Count("id"), at=Max("updated_at"))
    return (
        aliases["n"],
        aliases["at"],
        implications["n"],
        implications["at"],
        AliasResolution.objects.count(),
        TagClosure.objects.count(),
    )


def rules_current() -> Rules:
    """The alias and implication maps, reloaded only when the rules changed."""
    global _cached
    signature = _signature()
    with _cache_lock:
        if _cached is not None and _cached.signature == signature:
            return _cached
    rules = Rules(signature=signature)
    rules.ideal = dict(AliasResolution.objects.values_list("tag_id", "ideal_tag_id"))
    for descendant, ancestor in TagClosure.objects.values_list("descendant_id", "ancestor_id"):
        rules.ancestors.setdefault(descendant, set()).add(ancestor)
    with _cache_lock:
        _cached = rules
    return rules


def effective_compute(base: Iterable[int], rules: Rules) -> dict[int, bool]:
    """tag id → is_implied, for one item's base tag ids."""
    direct = {rules.ideal.get(tag_id, tag_id) for tag_id in base}
    result = dict.fromkeys(direct, False)
    for tag_id in direct:
        for ancestor in rules.ancestors.get(tag_id, ()):
            result.setdefault(ancestor, True)
    return result


def _bases(item_ids: list[int]) -> dict[int, set[int]]:
    curated_items = set(
        TagSet.objects.filter(media_item_id__in=item_ids, kind=TagSet.Kind.CURATED).values_list(
            "media_item_id", flat=True
        )
    )
    # Tagger thresholds per set, fetched apart: joining tag sets into the assignment scan lets
    # MariaDB drive the join from the (tiny) vocabulary table and read every assignment.
    per_vocabulary = dict(Vocabulary.objects.values_list("pk", "default_tagger_threshold"))
    thresholds = {
        set_id: per_vocabulary[vocabulary_id]
        for set_id, vocabulary_id in TagSet.objects.filter(
            media_item_id__in=item_ids, kind=TagSet.Kind.TAGGER
        ).values_list("pk", "vocabulary_id")
    }
    # Two index ranges: curated rows of items with a curated set, the other kinds' rows of the
    # rest (a curated library's source rows are never read).
    current = TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
    with_curated = sorted(curated_items)
    without = [i for i in item_ids if i not in curated_items]
    columns = ("media_item_id", "tag_id", "kind", "confidence", "tagset_id")
    rows: list[tuple[Any, ...]] = []
    if with_curated:
        rows += _fetch(current.filter(media_item_id__in=with_curated, kind=TagSet.Kind.CURATED), columns)
    if without:
        rows += _fetch(current.filter(media_item_id__in=without), columns)
    bases: dict[int, set[int]] = {item_id: set() for item_id in item_ids}
    for item_id, tag_id, kind, confidence, tagset_id in rows:
        if item_id in curated_items:
            if kind == TagSet.Kind.CURATED:
                bases[item_id].add(tag_id)
        elif kind == TagSet.Kind.TAGGER:
            if confidence is not None and confidence >= thresholds.get(tagset_id, 10001):
                bases[item_id].add(tag_id)
        elif kind != TagSet.Kind.CURATED:
            bases[item_id].add(tag_id)
    return bases


def _fetch(queryset: Any, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Rows of a values query through a plain cursor (no per-value converters; integers only)."""
    sql, params = queryset.values_list(*columns).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


class _Deferred(threading.local):
    """Counter deltas a bulk chunk collects while `counters_deferred` is open."""

    tags: dict[int, int] | None = None
    stats: dict[tuple[int, int], int] | None = None


_deferred = _Deferred()


@contextmanager
def counters_deferred() -> Iterator[None]:
    """Collect Tag.media_count and TagStat deltas and write them once, when the block ends
    without error: TagStat first, then Tag, each in ascending id, the order every single-set
    edit takes too, so a bulk chunk and an edit never wait on each other in a cycle. Nested use
    joins the outer block."""
    if _deferred.tags is not None:
        yield
        return
    _deferred.tags, _deferred.stats = defaultdict(int), defaultdict(int)
    try:
        yield
        tags, stats = _deferred.tags, _deferred.stats
    finally:
        _deferred.tags = _deferred.stats = None
    stats_apply(stats)
    counters_apply(tags)


class _RefreshDeferred(threading.local):
    on = False


_refresh_deferred = _RefreshDeferred()


@contextmanager
def effective_deferred() -> Iterator[None]:
    """Inside this block the set-based bulk paths leave effective tags (and Tag.media_count,
    MediaItem.tag_count) to a follow-up pass over the operation's log, which the caller owes:
    it marks the operation `effective_pending` in the same transaction
    (docs/tags.md#deferred-effective-refresh)."""
    before = _refresh_deferred.on
    _refresh_deferred.on = True
    try:
        yield
    finally:
        _refresh_deferred.on = before


def effective_is_deferred() -> bool:
    return _refresh_deferred.on


def stats_apply(deltas: dict[tuple[int, int], int]) -> None:
    """Add (tag, set kind) deltas to TagStat: one INSERT IGNORE, then one UPDATE per 500 tags."""
    if _deferred.stats is not None:
        for key, delta in deltas.items():
            _deferred.stats[key] += delta
        return
    changed = {key: delta for key, delta in deltas.items() if delta}
    if not changed:
        return
    int_rows_insert(
        TagStat,
        ("tag_id", "set_kind", "current_count"),
        ((None, None, 0), (0, 1)),
        sorted(changed),
        batch=1000,
        ignore=True,
    )
    by_kind: dict[int, dict[int, int]] = defaultdict(dict)
    for (tag_id, kind), delta in changed.items():
        by_kind[kind][tag_id] = delta
    for kind in sorted(by_kind):
        column_add(TagStat, "current_count", by_kind[kind], key="tag_id", set_kind=kind)


def counters_apply(deltas: dict[int, int]) -> None:
    """Add deltas to Tag.media_count in one statement; rows lock in ascending id (no deadlock)."""
    if _deferred.tags is not None:
        for tag_id, delta in deltas.items():
            _deferred.tags[tag_id] += delta
        return
    changed = {tag_id: delta for tag_id, delta in deltas.items() if delta}
    if not changed:
        return
    ids = sorted(changed)
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        list(Tag.objects.select_for_update().filter(pk__in=batch).order_by("pk").values_list("pk", flat=True))
        column_add(Tag, "media_count", {tag_id: changed[tag_id] for tag_id in batch})


FORGET_CHUNK = 5000


@transaction.atomic
def tag_counts_forget_items(*, item_ids: Iterable[int]) -> None:
    """Take items that are about to be deleted out of Tag.media_count (their effective tags) and
    TagStat (their current assignments), in the deleting transaction, before the rows cascade.

    Media calls this before deleting items (to become a receiver of media's `item_deleting`
    event). Set-based: per FORGET_CHUNK items one grouped count per table, then the usual
    batched counter writes (TagStat, then Tag, ascending ids), so deleting a million items is a
    few hundred statements. The items are locked first (ascending, as rebuilds and bulk chunks
    do) so no edit adds effective tags between the count and the delete.
    """
    ids = sorted(set(item_ids))
    tags: dict[int, int] = defaultdict(int)
    stats: dict[tuple[int, int], int] = defaultdict(int)
    for start in range(0, len(ids), FORGET_CHUNK):
        chunk = ids[start : start + FORGET_CHUNK]
        list(MediaItem.objects.select_for_update().filter(pk__in=chunk).order_by("pk").values_list("pk"))
        for tag_id, n in (
            EffectiveTag.objects.filter(media_item_id__in=chunk)
            .values("tag_id")
            .annotate(n=Count("*"))
            .values_list("tag_id", "n")
            .order_by()
        ):
            tags[tag_id] -= n
        for tag_id, kind, n in (
            TagAssignment.objects.filter(media_item_id__in=chunk, state=TagAssignment.State.CURRENT)
            .values("tag_id", "kind")
            .annotate(n=Count("*"))
            .values_list("tag_id", "kind", "n")
            .order_by()
        ):
            stats[(tag_id, kind)] -= n
    stats_apply(stats)
    counters_apply(tags)


@transaction.atomic
def effective_refresh(*, item_ids: Iterable[int], rules: Rules | None = None) -> dict[str, int]:
    """Recompute the effective tags of these items, writing only the difference.

    Also keeps Tag.media_count and MediaItem.tag_count exact, and clears `effective_stale`.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return {"added": 0, "removed": 0, "changed": 0}
    rules = rules or rules_current()
    bases = _bases(ids)
    existing: dict[int, dict[int, bool]] = defaultdict(dict)
    # A plain cursor: at 10⁵ rows per chunk the ORM's per-value converters cost more than the read.
    for item_id, tag_id, implied in _fetch(
        EffectiveTag.objects.filter(media_item_id__in=ids), ("media_item_id", "tag_id", "is_implied")
    ):
        existing[item_id][tag_id] = bool(implied)
    to_add: list[EffectiveTag] = []
    to_remove: dict[int, list[int]] = defaultdict(list)
    to_flip: list[tuple[int, int, bool]] = []
    deltas: dict[int, int] = defaultdict(int)
    counts: dict[int, int] = {}
    for item_id in ids:
        want = effective_compute(bases[item_id], rules)
        have = existing.get(item_id, {})
        counts[item_id] = len(want)
        for tag_id, implied in want.items():
            if tag_id not in have:
                to_add.append(EffectiveTag(tag_id=tag_id, media_item_id=item_id, is_implied=implied))
                deltas[tag_id] += 1
            elif have[tag_id] != implied:
                to_flip.append((tag_id, item_id, implied))
        for tag_id in have.keys() - want.keys():
            to_remove[item_id].append(tag_id)
            deltas[tag_id] -= 1
    _delete_pairs([(item_id, tag_id) for item_id, tag_ids in to_remove.items() for tag_id in tag_ids])
    if to_add:
        EffectiveTag.objects.bulk_create(to_add, batch_size=2000)
    for implied in (True, False):
        _flip_pairs([(item_id, tag_id) for tag_id, item_id, flag in to_flip if flag is implied], implied)
    counters_apply(deltas)
    item_types_refresh(item_ids={e.media_item_id for e in to_add} | to_remove.keys())
    # One statement clears the flags; tag_count is written only where it changed (a statement
    # per distinct new count), not once per distinct count in the chunk.
    stored = dict(MediaItem.objects.filter(pk__in=ids).values_list("pk", "tag_count"))
    by_count: dict[int, list[int]] = defaultdict(list)
    for item_id, n in counts.items():
        if stored.get(item_id) != n:
            by_count[n].append(item_id)
    for n, group in by_count.items():
        MediaItem.objects.filter(pk__in=group).update(tag_count=n)
    MediaItem.objects.filter(pk__in=ids, effective_stale=True).update(effective_stale=False)
    return {"added": len(to_add), "removed": sum(map(len, to_remove.values())), "changed": len(to_flip)}


SOURCES_MAX = 2000


def effective_refresh_tags(
    *, item_ids: Iterable[int], tag_ids: Iterable[int], rules: Rules | None = None
) -> dict[str, int] | None:
    """Bring up to date only the effective tags that stored `tag_ids` can produce (their alias
    ideals and implied ancestors), on items whose base is their curated set: what a bulk edit of
    a few tags needs, in two indexed reads and a few writes per affected tag, however many tags
    the items carry. Returns None (do a full `effective_refresh`) when the affected tags fan out
    to more than SOURCES_MAX stored tags. Leaves `effective_stale` alone: other tags of a stale
    item still wait for the rebuild.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return {"added": 0, "removed": 0, "changed": 0}
    rules = rules or rules_current()
    affected: set[int] = set()
    for tag_id in set(tag_ids):
        ideal = rules.ideal.get(tag_id, tag_id)
        affected |= {ideal, *rules.ancestors.get(ideal, ())}
    sources = {tag_id: rules.sources(tag_id) for tag_id in sorted(affected)}
    if sum(len(d) + len(i) for d, i in sources.values()) > SOURCES_MAX:
        return None
    to_add: list[tuple[int, int, bool]] = []
    to_remove: list[tuple[int, int]] = []
    to_flip: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    deltas: dict[int, int] = defaultdict(int)
    per_item: Counter[int] = Counter()
    for tag_id, (direct, implied) in sources.items():
        want: dict[int, bool] = {}
        if direct or implied:
            rows = (
                TagAssignment.objects.filter(
                    tag_id__in=sorted(direct | implied),
                    kind=TagSet.Kind.CURATED,
                    state=TagAssignment.State.CURRENT,
                    media_item_id__in=ids,
                )
                .values("media_item_id")
                .annotate(
                    implied=Min(
                        Case(When(tag_id__in=sorted(direct), then=Value(0)), default=Value(1)),
                        output_field=IntegerField(),
                    )
                )
                .values_list("media_item_id", "implied")
            )
            want = {item_id: bool(flag) for item_id, flag in rows}
        have = dict(
            EffectiveTag.objects.filter(tag_id=tag_id, media_item_id__in=ids).values_list(
                "media_item_id", "is_implied"
            )
        )
        for item_id, flag in want.items():
            if item_id not in have:
                to_add.append((tag_id, item_id, flag))
                per_item[item_id] += 1
            elif have[item_id] != flag:
                to_flip[flag].append((item_id, tag_id))
        for item_id in have.keys() - want.keys():
            to_remove.append((item_id, tag_id))
            per_item[item_id] -= 1
        deltas[tag_id] += len(want.keys() - have.keys()) - len(have.keys() - want.keys())
    _delete_pairs(to_remove)
    rows_insert(EffectiveTag, ("tag_id", "media_item_id", "is_implied"), to_add)
    for flag, pairs in to_flip.items():
        _flip_pairs(pairs, flag)
    counters_apply(deltas)
    item_types_refresh(item_ids={item_id for _t, item_id, _f in to_add} | {i for i, _t in to_remove})
    by_delta: dict[int, list[int]] = defaultdict(list)
    for item_id, delta in per_item.items():
        if delta:
            by_delta[delta].append(item_id)
    for delta, group in by_delta.items():
        for start in range(0, len(group), 5000):
            MediaItem.objects.filter(pk__in=group[start : start + 5000]).update(
                tag_count=F("tag_count") + delta
            )
    flipped = len(to_flip[True]) + len(to_flip[False])
    return {"added": len(to_add), "removed": len(to_remove), "changed": flipped}


def _grouped(pairs: list[tuple[int, int]]) -> list[tuple[str, int, list[int]]]:
    """Group (item, tag) pairs by whichever side gives fewer statements: a bulk edit touches
    few tags on many items, a rebuild many tags on few items."""
    by_item: dict[int, list[int]] = defaultdict(list)
    by_tag: dict[int, list[int]] = defaultdict(list)
    for item_id, tag_id in pairs:
        by_item[item_id].append(tag_id)
        by_tag[tag_id].append(item_id)
    if len(by_tag) <= len(by_item):
        return [("tag", tag_id, items) for tag_id, items in by_tag.items()]
    return [("item", item_id, tags) for item_id, tags in by_item.items()]


def _delete_pairs(pairs: list[tuple[int, int]]) -> None:
    for side, key, others in _grouped(pairs):
        for start in range(0, len(others), 1000):
            chunk = others[start : start + 1000]
            if side == "tag":
                EffectiveTag.objects.filter(tag_id=key, media_item_id__in=chunk).delete()
            else:
                EffectiveTag.objects.filter(media_item_id=key, tag_id__in=chunk).delete()


def _flip_pairs(pairs: list[tuple[int, int]], implied: bool) -> None:
    for side, key, others in _grouped(pairs):
        for start in range(0, len(others), 1000):
            chunk = others[start : start + 1000]
            if side == "tag":
                EffectiveTag.objects.filter(tag_id=key, media_item_id__in=chunk).update(is_implied=implied)
            else:
                EffectiveTag.objects.filter(media_item_id=key, tag_id__in=chunk).update(is_implied=implied)


def effective_mark_stale_for_tags(*, tag_ids: Iterable[int]) -> int:
    """Flag every item whose stored assignments mention these tags (a rule about them changed)."""
    ids = list(set(tag_ids))
    if not ids:
        return 0
    items = TagAssignment.objects.filter(tag_id__in=ids).values("media_item_id")
    return MediaItem.objects.filter(pk__in=items, effective_stale=False).update(effective_stale=True)


def effective_rebuild_stale(*, limit_chunks: int | None = None, on_chunk: Any = None) -> int:
    """Rebuild stale items in id order, one chunk per transaction; returns items rebuilt."""
    done = 0
    after = 0
    chunks = 0
    while limit_chunks is None or chunks < limit_chunks:
        ids = list(
            MediaItem.objects.filter(effective_stale=True, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:REBUILD_CHUNK]
        )
        if not ids:
            break
        rules = rules_current()
        with transaction.atomic():
            # Lock the chunk's items (ascending, as bulk edits do) so an edit running beside
            # the rebuild cannot change them between its read and its write.
            list(MediaItem.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
            effective_refresh(item_ids=ids, rules=rules)
        done += len(ids)
        after = ids[-1]
        chunks += 1
        if on_chunk is not None:
            on_chunk(done)
    return done


def effective_rebuild_all() -> int:
    """Mark every item stale and rebuild (after bulk imports or to repair drift)."""
    MediaItem.objects.filter(effective_stale=False).update(effective_stale=True)
    return effective_rebuild_stale()


def counters_recount() -> dict[str, int]:
    """Recompute Tag.media_count from EffectiveTag and report the drift that was repaired."""
    actual = dict(EffectiveTag.objects.values_list("tag_id").annotate(n=Count("media_item_id")))
    drift = 0
    for tag_id, stored in Tag.objects.values_list("pk", "media_count"):
        want = actual.get(tag_id, 0)
        if want != stored:
            Tag.objects.filter(pk=tag_id).update(media_count=want)
            drift += 1
    return {"tags_fixed": drift}
