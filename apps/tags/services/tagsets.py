"""Tag sets: source sets from imports, derived sets by inheritance, adding and deleting sets.

Curated sets and people's edits live in `curation.py`; every row change goes through the one
writer, `assignments.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError
from apps.tags import slots
from apps.tags.models import TagAssignment, TagSet, Vocabulary
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write
from apps.tags.services.curation import locked_set, tag_set_curated_add
from apps.tags.services.effective import effective_refresh
from apps.tags.services.names import (
    tag_name_normalise,
    tag_names_canonical,
    tag_names_split,
    tags_get_or_create,
    vocabulary_default,
)


@transaction.atomic
def tag_set_create_source(
    *,
    media_item: Any,
    origin: Any,
    origin_label: str,
    names: Sequence[str],
    actor: Any = None,
    vocabulary: Vocabulary | None = None,
) -> TagSet:
    """Store tags from outside as a new `source` set: tied to the file's arrival (`origin`), or,
    without one, keyed by `origin_label` (a second set with the same label is a conflict)."""
    vocabulary = vocabulary or vocabulary_default()
    typed = tag_names_split(raw=list(names), vocabulary=vocabulary)  # `char:x` from metadata: type char
    entered: dict[str, str] = {}
    for raw in names:  # what arrived, prefix and all, for provenance
        entered.setdefault(tag_name_normalise(raw=raw, vocabulary=vocabulary), raw)
    names = [name for name, _ in typed]
    tags = tags_get_or_create(vocabulary=vocabulary, names=names, types=dict(typed))
    actor = actor if actor is not None and actor.is_authenticated else None
    slot = slots.source(origin_id=origin.pk if origin is not None else None, label=origin_label)
    if (
        origin is None
        and TagSet.objects.filter(
            media_item=media_item, kind=TagSet.Kind.SOURCE, vocabulary=vocabulary, slot=slot
        ).exists()
    ):
        raise ConflictError(
            f"Item {media_item.pk} already has a source tag set from {origin_label!r}.",
            code="tags.duplicate_set",
            details={"tag_source": origin_label},
        )
    try:
        with transaction.atomic():
            tag_set = TagSet.objects.create(
                media_item=media_item,
                kind=TagSet.Kind.SOURCE,
                vocabulary=vocabulary,
                slot=slot,
                origin=origin,
                origin_label=origin_label[:200],
                created_by=actor,
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"Item {media_item.pk} already has a source tag set from {origin_label!r}.",
            code="tags.duplicate_set",
            details={"tag_source": origin_label},
        ) from exc
    assignments_write(
        [
            Transition(
                set_id=tag_set.pk,
                tag_id=tags[name].pk,
                item_id=media_item.pk,
                before=ABSENT,
                after=CURRENT,
                position=position,
                via=TagAssignment.Via.IMPORT,
                entered=entered.get(name, name),
            )
            for position, name in enumerate(names)
        ],
        kind=TagSet.Kind.SOURCE,
        operation_id=None,
        actor_id=actor.pk if actor is not None else None,
    )
    return tag_set


Inheritable = tuple[int, int, int | None, str]  # (origin set, tag, position, entered name)


def _inheritable_many(source_ids: Sequence[int]) -> dict[int, list[Inheritable]]:
    """The tags each source passes on, in one read: its curated set's (by position, tag), else
    the union of its source sets' (first by set, position). Sources with none are absent."""
    rows = TagAssignment.objects.filter(
        media_item_id__in=sorted(set(source_ids)),
        state=TagAssignment.State.CURRENT,
        kind__in=(TagSet.Kind.CURATED, TagSet.Kind.SOURCE),
    ).values_list("media_item_id", "kind", "tagset_id", "tag_id", "position", "entered_tag")
    curated: dict[int, list[Inheritable]] = {}
    source: dict[int, list[Inheritable]] = {}
    for item_id, kind, set_id, tag_id, position, entered in rows:
        target = curated if kind == TagSet.Kind.CURATED else source
        target.setdefault(item_id, []).append((set_id, tag_id, position, entered))
    passed: dict[int, list[Inheritable]] = {}
    for item_id, found in curated.items():
        passed[item_id] = sorted(found, key=lambda r: (r[2] is not None, r[2] or 0, r[1]))
    for item_id, found in source.items():
        if item_id in passed:
            continue
        seen: dict[int, Inheritable] = {}
        for row in sorted(found, key=lambda r: (r[0], r[2] is not None, r[2] or 0)):
            seen.setdefault(row[1], row)
        passed[item_id] = list(seen.values())
    return passed


@transaction.atomic
def tag_set_add_to_item(
    *, media_item: Any, kind: str, names: Sequence[str], tag_source: str = "", actor: Any = None
) -> TagSet:
    """Add tags to an item in one transaction: into its curated set (created on first use), or as
    a new source set keyed by where they came from (`tag_source`)."""
    if kind == "curated":
        return tag_set_curated_add(media_item=media_item, names=list(names), actor=actor)[0]
    clean = tag_names_canonical(raw=list(names), vocabulary=vocabulary_default())
    return tag_set_create_source(
        media_item=media_item, origin=None, origin_label=tag_source, names=clean, actor=actor
    )


@transaction.atomic
def tag_set_inherit(*, target: Any, source: Any, slot: str) -> TagSet | None:
    """Copy `source`'s tags into a `derived` set on `target` (e.g. slot `video:<id>`); idempotent.

    Returns None when the source has no tags to pass on.
    """
    made = tag_sets_inherit(pairs=[(target, source, slot)])
    return TagSet.objects.get(pk=made[target.pk]) if target.pk in made else None


@transaction.atomic
def tag_sets_inherit(*, pairs: Sequence[tuple[Any, Any, str]]) -> dict[int, int]:
    """`tag_set_inherit` for many (target, source, slot) at once (a batch of transform results,
    docs/tags.md#tag-sets): one read of the sources' tags, one query for the derived sets
    that exist already (left as they are: idempotent), one INSERT of the new sets and one
    `assignments_write` of all their rows. Returns {target id: derived set id} for the targets
    whose source has tags to pass on."""
    passed = _inheritable_many([source.pk for _, source, _ in pairs])
    wanted: dict[tuple[int, str], int] = {}  # (target, slot) → source
    for target, source, slot in pairs:
        if passed.get(source.pk):
            wanted.setdefault((target.pk, slot), source.pk)
    if not wanted:
        return {}
    vocabulary = vocabulary_default()

    def sets_of() -> dict[tuple[int, str], int]:
        found = TagSet.objects.filter(
            media_item_id__in={t for t, _ in wanted},
            kind=TagSet.Kind.DERIVED,
            vocabulary=vocabulary,
            slot__in={s for _, s in wanted},
        ).values_list("media_item_id", "slot", "pk")
        return {(t, s): pk for t, s, pk in found if (t, s) in wanted}

    before = sets_of()
    new = [key for key in wanted if key not in before]
    if new:
        TagSet.objects.bulk_create(
            [
                TagSet(
                    media_item_id=t,
                    kind=TagSet.Kind.DERIVED,
                    vocabulary=vocabulary,
                    slot=s,
                    origin_label=f"inherited from item {wanted[(t, s)]}",
                )
                for t, s in new
            ]
        )
        after = sets_of()
        assignments_write(
            [
                Transition(
                    set_id=after[(t, s)],
                    tag_id=tag_id,
                    item_id=t,
                    before=ABSENT,
                    after=CURRENT,
                    position=position,
                    via=TagAssignment.Via.INHERIT,
                    origin_set_id=origin_set,
                    entered=entered,
                )
                for t, s in new
                for position, (origin_set, tag_id, _, entered) in enumerate(passed[wanted[(t, s)]])
            ],
            kind=TagSet.Kind.DERIVED,
            operation_id=None,
            actor_id=None,
        )
    else:
        after = before
    made: dict[int, int] = {}
    for target, _source, slot in pairs:
        if (target.pk, slot) in after:
            made.setdefault(target.pk, after[(target.pk, slot)])
    return made


@transaction.atomic
def tag_set_delete(*, tag_set: TagSet, expected_version: int | None = None) -> None:
    """Delete a whole set and its assignments; the item's effective tags and counts follow."""
    locked = locked_set(tag_set, expected_version)
    current = TagAssignment.objects.filter(tagset=locked, state=CURRENT).values_list("tag_id", flat=True)
    written = assignments_write(
        [
            Transition(
                set_id=locked.pk, tag_id=tag_id, item_id=locked.media_item_id, before=CURRENT, after=ABSENT
            )
            for tag_id in current
        ],
        kind=locked.kind,
        operation_id=None,
        actor_id=None,
        drop_sets=[locked.pk],
    )
    if not written.items:  # a set without current tags still decided what the item's base is
        effective_refresh(item_ids=[locked.media_item_id])
