"""Tag sets: source sets from imports, derived sets by inheritance, curated edits by people."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError
from apps.tags.models import TagAssignment, TagSet, Vocabulary
from apps.tags.services.names import tags_get_or_create, vocabulary_default


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
    tags = tags_get_or_create(vocabulary=vocabulary, names=names)
    actor = actor if actor is not None and actor.is_authenticated else None
    if origin is not None:
        slot = f"src:{origin.pk}"
    else:
        slot = "src:label:" + hashlib.sha256(origin_label.encode()).hexdigest()[:32]
        if TagSet.objects.filter(
            media_item=media_item, kind=TagSet.Kind.SOURCE, vocabulary=vocabulary, slot=slot
        ).exists():
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
                assignment_count=len(names),
                created_by=actor,
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"Item {media_item.pk} already has a source tag set from {origin_label!r}.",
            code="tags.duplicate_set",
            details={"tag_source": origin_label},
        ) from exc
    TagAssignment.objects.bulk_create(
        [
            TagAssignment(
                tagset=tag_set,
                tag=tags[name],
                media_item=media_item,
                kind=TagSet.Kind.SOURCE,
                position=position,
                added_via=TagAssignment.Via.IMPORT,
                actor=actor,
                entered_tag=name,
            )
            for position, name in enumerate(names)
        ]
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
def tag_set_inherit(*, target: Any, source: Any, slot: str) -> TagSet | None:
    """Copy `source`'s tags into a `derived` set on `target` (e.g. slot `video:<id>`); idempotent.

    Returns None when the source has no tags to pass on.
    """
    rows = _inheritable_assignments(source)
    if not rows:
        return None
    vocabulary = vocabulary_default()
    tag_set, created = TagSet.objects.get_or_create(
        media_item=target,
        kind=TagSet.Kind.DERIVED,
        vocabulary=vocabulary,
        slot=slot,
        defaults={"origin_label": f"inherited from item {source.pk}", "assignment_count": len(rows)},
    )
    if created:
        TagAssignment.objects.bulk_create(
            [
                TagAssignment(
                    tagset=tag_set,
                    tag_id=row.tag_id,
                    media_item=target,
                    kind=TagSet.Kind.DERIVED,
                    position=position,
                    added_via=TagAssignment.Via.INHERIT,
                    origin_set_id=row.tagset_id,
                    entered_tag=row.entered_tag,
                )
                for position, row in enumerate(rows)
            ]
        )
    return tag_set
