"""Tag sets: source sets from imports, derived sets by inheritance, adding and deleting sets.

Curated sets and people's edits live in `curation.py`; every row change goes through the one
writer, `assignments.py`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction

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


def _inheritable_assignments(source: Any) -> list[TagAssignment]:
    """The tags a derived item inherits: the curated set's, else the union of source sets'."""
    current = TagAssignment.objects.filter(media_item=source, state=TagAssignment.State.CURRENT)
    curated = list(current.filter(kind=TagSet.Kind.CURATED).order_by("position", "tag_id"))
    if curated:
        return curated
    seen: dict[int, TagAssignment] = {}
    for row in current.filter(kind=TagSet.Kind.SOURCE).order_by("tagset_id", "position"):
        seen.setdefault(row.tag_id, row)
    return list(seen.values())


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
    rows = _inheritable_assignments(source)
    if not rows:
        return None
    tag_set, created = TagSet.objects.get_or_create(
        media_item=target,
        kind=TagSet.Kind.DERIVED,
        vocabulary=vocabulary_default(),
        slot=slot,
        defaults={"origin_label": f"inherited from item {source.pk}"},
    )
    if created:
        assignments_write(
            [
                Transition(
                    set_id=tag_set.pk,
                    tag_id=row.tag_id,
                    item_id=target.pk,
                    before=ABSENT,
                    after=CURRENT,
                    position=position,
                    via=TagAssignment.Via.INHERIT,
                    origin_set_id=row.tagset_id,
                    entered=row.entered_tag,
                )
                for position, row in enumerate(rows)
            ],
            kind=TagSet.Kind.DERIVED,
            operation_id=None,
            actor_id=None,
        )
        tag_set.refresh_from_db()
    return tag_set


def _inheritable_rows(source: Any) -> list[TagAssignment]:
    """`_inheritable_assignments` in one read: the source's current curated and source rows
    together, the curated set's kept when it has any (same rows, same order)."""
    rows = list(
        TagAssignment.objects.filter(
            media_item=source,
            state=TagAssignment.State.CURRENT,
            kind__in=(TagSet.Kind.CURATED, TagSet.Kind.SOURCE),
        ).order_by("kind", "tagset_id", "position", "tag_id")
    )
    curated = sorted((r for r in rows if r.kind == TagSet.Kind.CURATED), key=lambda r: (r.position, r.tag_id))
    if curated:
        return curated
    seen: dict[int, TagAssignment] = {}
    for row in rows:  # source rows, by set and position
        seen.setdefault(row.tag_id, row)
    return list(seen.values())


@transaction.atomic
def tag_sets_inherit(*, targets: Sequence[Any], source: Any, slot: str) -> int:
    """`tag_set_inherit` for many targets of one source (a batch of frames of one video): one
    read of the source's tags, one read of the targets' sets in `slot`, the missing sets created
    at once and their rows written in one call of the writer. Idempotent; returns the number of
    sets created (0 when the source has no tags to pass on)."""
    rows = _inheritable_rows(source)
    target_ids = list(dict.fromkeys(target.pk for target in targets))
    if not rows or not target_ids:
        return 0
    vocabulary = vocabulary_default()
    have = set(
        TagSet.objects.filter(
            media_item_id__in=target_ids, kind=TagSet.Kind.DERIVED, vocabulary=vocabulary, slot=slot
        ).values_list("media_item_id", flat=True)
    )
    new = [
        TagSet(
            media_item_id=item_id,
            kind=TagSet.Kind.DERIVED,
            vocabulary=vocabulary,
            slot=slot,
            origin_label=f"inherited from item {source.pk}",
        )
        for item_id in target_ids
        if item_id not in have
    ]
    if not new:
        return 0
    if connection.features.can_return_rows_from_bulk_insert:
        TagSet.objects.bulk_create(new)
    else:  # a database that cannot hand back the new ids: one insert each
        for tag_set in new:
            tag_set.save()
    assignments_write(
        [
            Transition(
                set_id=tag_set.pk,
                tag_id=row.tag_id,
                item_id=tag_set.media_item_id,
                before=ABSENT,
                after=CURRENT,
                position=position,
                via=TagAssignment.Via.INHERIT,
                origin_set_id=row.tagset_id,
                entered=row.entered_tag,
            )
            for tag_set in new
            for position, row in enumerate(rows)
        ],
        kind=TagSet.Kind.DERIVED,
        operation_id=None,
        actor_id=None,
    )
    return len(new)


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
