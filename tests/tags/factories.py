"""Small, generic builders for tag tests: items, tags, tag sets, rules, effective tags (bulk).

`make_item` is the media app's one item builder (tests/media/factories.py: a real file through
the real ingest, with optional source tags); the bulk builders below insert rows directly for
libraries of hundreds of items. Reads that tests compare live in tests/tags/snapshots.py.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Count

from apps.media.models import MediaItem
from apps.tags.models import (
    AliasResolution,
    Tag,
    TagAssignment,
    TagClosure,
    TagSet,
    TagStat,
    TagType,
    Vocabulary,
)
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write, sets_recount
from apps.tags.services.effective import Rules, effective_refresh
from apps.tags.services.names import tags_get_or_create, vocabulary_default
from tests.media.factories import make_item

__all__ = [
    "alias_make",
    "assign",
    "closure_make",
    "effective_build",
    "items_bulk",
    "items_make",
    "library",
    "make_item",
    "rules_fresh",
    "stats_rebuild",
    "tag_type",
    "tagger_set_make",
    "tags_make",
]

_serial = itertools.count(1)


def items_make(n: int, **fields: Any) -> list[MediaItem]:
    """n images (or `kind=`…) with unique hashes, inserted in one statement, ids ascending."""
    return items_bulk([fields] * n)


def items_bulk(rows: Sequence[dict[str, Any]]) -> list[MediaItem]:
    """One item per dict of column values (defaults fill the rest), in one statement, ids ascending."""
    objects = []
    for fields in rows:
        serial = next(_serial)
        values = {
            "kind": MediaItem.Kind.IMAGE,
            "name": f"item{serial}.jpg",
            "sha256": hashlib.sha256(f"item-{serial}".encode()).hexdigest(),
            "storage_key": f"test/{serial}",
            "format": "jpeg",
            "mime_type": "image/jpeg",
            "size_bytes": 1000,
            **fields,
        }
        objects.append(MediaItem(**values))
    MediaItem.objects.bulk_create(objects, batch_size=1000)
    hashes = [o.sha256 for o in objects]
    found = {m.sha256: m for m in MediaItem.objects.filter(sha256__in=hashes)}
    return sorted((found[h] for h in hashes), key=lambda m: m.pk)


def tag_type(key: str) -> TagType:
    """A tag type by key (the seeded ones: general, character, copyright, artist, meta, …)."""
    return TagType.objects.get(key=key)


def tags_make(
    names: Iterable[str], *, type_key: str = "general", vocabulary: Vocabulary | None = None
) -> dict[str, Tag]:
    """Tags by name (created in bulk; existing ones are returned as they are)."""
    vocabulary = vocabulary or vocabulary_default()
    wanted = list(dict.fromkeys(names))
    kind = tag_type(type_key)
    Tag.objects.bulk_create(
        [Tag(vocabulary=vocabulary, name=n, display_name=n, type=kind) for n in wanted], ignore_conflicts=True
    )
    return {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=wanted)}


def assign(
    rows: Sequence[tuple[int, int, int]] | Sequence[tuple[int, int, int, int, int | None]],
    *,
    slot: str = "",
    vocabulary: Vocabulary | None = None,
) -> None:
    """Bulk assignments from (item_id, set_kind, tag_id[, state, confidence]) rows.

    One tag set per (item, kind) is created as needed (slot '' for curated, `slot` or a
    default per kind otherwise).
    """
    vocabulary = vocabulary or vocabulary_default()
    keys = {(r[0], r[1]) for r in rows}
    default_slot = {
        TagSet.Kind.CURATED: "",
        TagSet.Kind.SOURCE: "src:test",
        TagSet.Kind.TAGGER: "wd@1",
        TagSet.Kind.DERIVED: "video:0",
    }
    slots = {k: "" if k[1] == TagSet.Kind.CURATED else slot or default_slot[TagSet.Kind(k[1])] for k in keys}
    TagSet.objects.bulk_create(
        [
            TagSet(
                media_item_id=item,
                kind=kind,
                vocabulary=vocabulary,
                slot=slots[(item, kind)],
                tagger_model="wd" if kind == TagSet.Kind.TAGGER else "",
                tagger_version="1" if kind == TagSet.Kind.TAGGER else "",
            )
            for item, kind in keys
        ],
        ignore_conflicts=True,
    )
    sets = {
        (s.media_item_id, s.kind): s.pk
        for s in TagSet.objects.filter(media_item_id__in={k[0] for k in keys}, vocabulary=vocabulary)
        if (s.media_item_id, s.kind) in slots and s.slot == slots[(s.media_item_id, s.kind)]
    }
    TagAssignment.objects.bulk_create(
        [
            TagAssignment(
                tagset_id=sets[(r[0], r[1])],
                tag_id=r[2],
                media_item_id=r[0],
                kind=r[1],
                state=r[3] if len(r) > 3 else TagAssignment.State.CURRENT,  # type: ignore[misc]
                confidence=r[4] if len(r) > 4 else None,  # type: ignore[misc]
                added_via=TagAssignment.Via.IMPORT,
            )
            for r in rows
        ],
        batch_size=2000,
    )


def alias_make(antecedent: Tag, ideal: Tag) -> None:
    """An active alias as search and effective tags see it (an AliasResolution row)."""
    AliasResolution.objects.create(tag=antecedent, ideal_tag=ideal)


def closure_make(pairs: Iterable[tuple[Tag, Tag, int]]) -> None:
    """Implication closure rows (descendant, ancestor, depth)."""
    TagClosure.objects.bulk_create([TagClosure(descendant=d, ancestor=a, depth=n) for d, a, n in pairs])


def rules_fresh() -> Rules:
    """Alias and closure maps read now (never the per-process cache: tests reuse signatures)."""
    rules = Rules(signature=("test", next(_serial)))
    rules.ideal = dict(AliasResolution.objects.values_list("tag_id", "ideal_tag_id"))
    for descendant, ancestor in TagClosure.objects.values_list("descendant_id", "ancestor_id"):
        rules.ancestors.setdefault(descendant, set()).add(ancestor)
    return rules


def effective_build(item_ids: Iterable[int]) -> None:
    """Compute EffectiveTag rows, Tag.media_count and MediaItem.tag_count for these items."""
    effective_refresh(item_ids=list(item_ids), rules=rules_fresh())


def tagger_set_make(item: MediaItem, scores: dict[str, int], model: str = "wd", version: str = "1") -> TagSet:
    """A tagger's output on `item` ({name: confidence in 1/10,000}), written as a tagger writes
    it: through the one assignment writer, so counters and effective tags follow."""
    vocabulary = vocabulary_default()
    tags = tags_get_or_create(vocabulary=vocabulary, names=list(scores))
    tag_set = TagSet.objects.create(
        media_item=item,
        kind=TagSet.Kind.TAGGER,
        vocabulary=vocabulary,
        slot=f"{model}@{version}",
        tagger_model=model,
        tagger_version=version,
    )
    assignments_write(
        [
            Transition(
                set_id=tag_set.pk,
                tag_id=tags[name].pk,
                item_id=item.pk,
                before=ABSENT,
                after=CURRENT,
                position=position,
                via=TagAssignment.Via.TAGGER,
                confidence=score,
            )
            for position, (name, score) in enumerate(scores.items())
        ],
        kind=TagSet.Kind.TAGGER,
        operation_id=None,
        actor_id=None,
    )
    tag_set.refresh_from_db()
    return tag_set


def stats_rebuild() -> None:
    """TagStat from the assignments (the bulk builders insert rows without counting them)."""
    TagStat.objects.all().delete()
    TagStat.objects.bulk_create(
        [
            TagStat(tag_id=t, set_kind=k, current_count=n)
            for t, k, n in TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
            .values_list("tag_id", "kind")
            .annotate(n=Count("*"))
            .values_list("tag_id", "kind", "n")
        ]
    )


def library(
    n: int,
    *,
    curated: Sequence[str] | None = ("cat", "sky"),
    source: Sequence[str] = (),
    tagger: dict[str, int] | None = None,
    tombstoned: Sequence[str] = (),
) -> list[MediaItem]:
    """n items with the same tags: a curated set (unless None), a source set, a tagger set;
    effective tags, counters and set counts computed as the services would leave them.

    Positions follow the order given (tombstones after the current curated tags).
    """
    curated_kind, source_kind, tagger_kind = TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.TAGGER
    items = items_make(n)
    tags = tags_make([*(curated or ()), *source, *(tagger or {}), *tombstoned])
    rows: list[Any] = []
    for item in items:
        rows += [(item.pk, curated_kind, tags[name].pk) for name in curated or ()]
        rows += [(item.pk, curated_kind, tags[name].pk, 0, None) for name in tombstoned]
        rows += [(item.pk, source_kind, tags[name].pk) for name in source]
        rows += [(item.pk, tagger_kind, tags[name].pk, 1, score) for name, score in (tagger or {}).items()]
    if rows:
        assign(rows)
    ids = [i.pk for i in items]
    by_kind = (
        (curated_kind, [*(curated or ()), *tombstoned]),
        (source_kind, source),
        (tagger_kind, list(tagger or {})),
    )
    for kind, names in by_kind:
        for position, name in enumerate(names):
            TagAssignment.objects.filter(media_item_id__in=ids, kind=kind, tag=tags[name]).update(
                position=position
            )
    effective_build(ids)
    stats_rebuild()
    sets_recount(TagSet.objects.filter(media_item_id__in=ids).values_list("pk", flat=True))
    return items
