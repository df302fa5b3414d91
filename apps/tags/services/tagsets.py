"""Tag sets: source sets from imports, derived sets by inheritance, curated edits by people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.tags import slots
from apps.tags.models import (
    AliasResolution,
    Operation,
    OperationChange,
    Tag,
    TagAssignment,
    TagSet,
    Vocabulary,
)
from apps.tags.services.effective import effective_refresh, stats_apply
from apps.tags.services.names import (
    tag_name_normalise,
    tag_names_canonical,
    tag_names_normalise,
    tag_names_split,
    tags_get_or_create,
    vocabulary_default,
)
from apps.tags.services.operations.plan import SET_CREATED


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
                assignment_count=len(names),
                created_by=actor,
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"Item {media_item.pk} already has a source tag set from {origin_label!r}.",
            code="tags.duplicate_set",
            details={"tag_source": origin_label},
        ) from exc
    rows = [
        TagAssignment(
            tagset=tag_set,
            tag=tags[name],
            media_item=media_item,
            kind=TagSet.Kind.SOURCE,
            position=position,
            added_via=TagAssignment.Via.IMPORT,
            actor=actor,
            entered_tag=entered.get(name, name),
        )
        for position, name in enumerate(names)
    ]
    TagAssignment.objects.bulk_create(rows)
    tag_stats_for_new_rows(rows)
    _refresh(media_item.pk)
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
        new_rows = [
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
        TagAssignment.objects.bulk_create(new_rows)
        tag_stats_for_new_rows(new_rows)
        _refresh(target.pk)
    return tag_set


# --- curated edits ------------------------------------------------------------------------

EDITABLE_KINDS = {TagSet.Kind.CURATED}
REMOVABLE_KINDS = {TagSet.Kind.CURATED, TagSet.Kind.TAGGER, TagSet.Kind.DERIVED}


def tag_stats_for_new_rows(rows: Sequence[TagAssignment]) -> None:
    """Count freshly inserted current assignments into TagStat."""
    deltas: dict[tuple[int, int], int] = {}
    for row in rows:
        if row.state == TagAssignment.State.CURRENT:
            key = (row.tag_id, row.kind)
            deltas[key] = deltas.get(key, 0) + 1
    stats_apply(deltas)


def _resolve_for_people(*, names: Sequence[str], vocabulary: Vocabulary) -> list[tuple[Any, str]]:
    """(Tag, entered name) for names a person typed: normalised, deprecated refused, aliases resolved."""
    typed = tag_names_split(raw=list(names), vocabulary=vocabulary)
    clean = [name for name, _ in typed]
    tags = tags_get_or_create(vocabulary=vocabulary, names=clean, types=dict(typed), type_conflict="refuse")
    deprecated = [name for name in clean if tags[name].is_deprecated]
    if deprecated:
        raise DomainError(
            f"Deprecated tags cannot be added: {', '.join(deprecated[:10])}.",
            code="tags.deprecated",
            details={"tags": deprecated[:50]},
        )
    ideal = dict(
        AliasResolution.objects.filter(tag_id__in=[t.pk for t in tags.values()]).values_list(
            "tag_id", "ideal_tag"
        )
    )
    resolved: list[tuple[Any, str]] = []
    seen: set[int] = set()
    ideal_tags = {t.pk: t for t in tags.values()}
    if ideal:
        ideal_tags.update({t.pk: t for t in Tag.objects.filter(pk__in=set(ideal.values()))})
    for name in clean:
        tag = ideal_tags[ideal.get(tags[name].pk, tags[name].pk)]
        if tag.pk not in seen:
            seen.add(tag.pk)
            resolved.append((tag, name))
    return resolved


def _locked_set(tag_set: TagSet, expected_version: int | None) -> TagSet:
    locked = TagSet.objects.select_for_update().get(pk=tag_set.pk)
    if expected_version is not None and expected_version != locked.row_version:
        raise ConflictError(
            f"Tag set {locked.pk} changed since you loaded it (version {expected_version}, now "
            f"{locked.row_version}); reload and apply your edit again.",
            code="tags.stale_version",
            details={"row_version": locked.row_version},
        )
    return locked


def tag_set_curated_get_or_create(
    *, media_item: Any, actor: Any = None, vocabulary: Vocabulary | None = None
) -> TagSet:
    """The item's curated set; created on first use, seeded from its source and derived tags
    (tagger output is never copied in silently) so a first edit does not hide what it had."""
    return _curated_get_or_create(media_item=media_item, actor=actor, vocabulary=vocabulary)[0]


def _curated_get_or_create(
    *, media_item: Any, actor: Any = None, vocabulary: Vocabulary | None = None, operation: Any = None
) -> tuple[TagSet, int]:
    """(curated set, rows seeded now: 0 when it existed). With `operation`, the seeded rows are
    that operation's own and logged as changes of a set it created, so undoing it drops the set."""
    vocabulary = vocabulary or vocabulary_default()
    existing = TagSet.objects.filter(
        media_item=media_item, kind=TagSet.Kind.CURATED, vocabulary=vocabulary, slot=slots.CURATED
    ).first()
    if existing is not None:
        return existing, 0
    with transaction.atomic():
        actor = actor if actor is not None and actor.is_authenticated else None
        try:
            with transaction.atomic():
                tag_set = TagSet.objects.create(
                    media_item=media_item,
                    kind=TagSet.Kind.CURATED,
                    vocabulary=vocabulary,
                    slot=slots.CURATED,
                    created_by=actor,
                )
        except IntegrityError:
            return TagSet.objects.get(
                media_item=media_item, kind=TagSet.Kind.CURATED, vocabulary=vocabulary, slot=slots.CURATED
            ), 0
        seeds: dict[int, TagAssignment] = {}
        for row in TagAssignment.objects.filter(
            media_item=media_item,
            state=TagAssignment.State.CURRENT,
            kind__in=[TagSet.Kind.SOURCE, TagSet.Kind.DERIVED],
            tagset__vocabulary=vocabulary,
        ).order_by("kind", "tagset_id", "position"):
            seeds.setdefault(row.tag_id, row)
        rows = [
            TagAssignment(
                tagset=tag_set,
                tag_id=row.tag_id,
                media_item=media_item,
                kind=TagSet.Kind.CURATED,
                position=position,
                added_via=TagAssignment.Via.PROMOTE,
                actor=actor,
                origin_set_id=row.tagset_id,
                entered_tag=row.entered_tag,
                operation=operation,
            )
            for position, row in enumerate(seeds.values())
        ]
        TagAssignment.objects.bulk_create(rows)
        if operation is not None:
            OperationChange.objects.bulk_create(
                OperationChange(
                    operation=operation,
                    tagset=tag_set,
                    tag_id=row.tag_id,
                    media_item_id=media_item.pk,
                    before_state=OperationChange.State.ABSENT,
                    after_state=OperationChange.State.CURRENT,
                    before_via=SET_CREATED,
                )
                for row in rows
            )
        tag_stats_for_new_rows(rows)
        TagSet.objects.filter(pk=tag_set.pk).update(assignment_count=len(rows))
        _refresh(media_item.pk)
    tag_set.refresh_from_db()
    return tag_set, len(rows)


@transaction.atomic
def tag_set_curated_add(
    *,
    media_item: Any,
    names: Sequence[str],
    actor: Any = None,
    expected_version: int | None = None,
    vocabulary: Vocabulary | None = None,
) -> tuple[TagSet, Any]:
    """Add tags a person typed to the item's curated set, creating (and seeding) the set on first
    use, all in one transaction: a refused add leaves no half-made curated set behind.

    `expected_version` is the row_version the caller saw; 0 means it saw no curated set, so one
    created since is as stale as one edited since (409). Returns the set and the edit operation
    (None when no names were given).
    """
    vocabulary = vocabulary or vocabulary_default()
    existing = TagSet.objects.filter(
        media_item=media_item, kind=TagSet.Kind.CURATED, vocabulary=vocabulary, slot=slots.CURATED
    ).first()
    if existing is None:
        tag_set = tag_set_curated_get_or_create(media_item=media_item, actor=actor, vocabulary=vocabulary)
        expected: int | None = tag_set.row_version
    elif expected_version == 0:
        raise ConflictError(
            f"Item {media_item.pk} got a curated tag set since you loaded it; reload and add again.",
            code="tags.stale_version",
            details={"row_version": existing.row_version},
        )
    else:
        tag_set, expected = existing, expected_version
    if not names:
        return tag_set, None
    operation = tag_set_edit(tag_set=tag_set, add=names, actor=actor, expected_version=expected)
    return tag_set, operation


def _refresh(item_id: int) -> None:
    effective_refresh(item_ids=[item_id])


@transaction.atomic
def tag_set_edit(
    *,
    tag_set: TagSet,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    replace: Sequence[str] | None = None,
    actor: Any = None,
    expected_version: int | None = None,
    via: str = TagAssignment.Via.MANUAL,
    operation: Any = None,
) -> Any:
    """Add, remove or replace a set's tags as one logged, undoable `edit` operation (or as part
    of `operation`, which a promotion opened).

    Removal keeps a tombstone; a person's add revives one. Curated additions resolve aliases and
    refuse deprecated tags. A stale `expected_version` is a 409, never a silent overwrite.
    """
    locked = _locked_set(tag_set, expected_version)
    if (add or replace is not None) and locked.kind not in EDITABLE_KINDS:
        raise DomainError(
            f"A {locked.get_kind_display()} set keeps what arrived; add tags to the curated set instead.",
            code="tags.set_read_only",
            details={"kind": locked.get_kind_display()},
        )
    if remove and locked.kind not in REMOVABLE_KINDS:
        raise DomainError(
            "Tags of a source set cannot be removed; curate them in the curated set.",
            code="tags.set_read_only",
        )
    actor = actor if actor is not None and actor.is_authenticated else None
    current = {row.tag_id: row for row in TagAssignment.objects.filter(tagset=locked)}
    wanted = _resolve_for_people(names=replace if replace is not None else add, vocabulary=locked.vocabulary)
    wanted_ids = {tag.pk for tag, _ in wanted}
    if replace is not None:
        removing = {
            tag_id
            for tag_id, row in current.items()
            if row.state == TagAssignment.State.CURRENT and tag_id not in wanted_ids
        }
    else:
        removing = set()
        names = [n for n in remove if isinstance(n, str)]
        if names:
            # Existing tags only: removing a name nobody used must not create it.
            clean = tag_names_normalise(raw=names, vocabulary=locked.vocabulary)
            found = Tag.objects.filter(vocabulary=locked.vocabulary, name__in=clean).values_list(
                "pk", flat=True
            )
            removing = {
                tag_id
                for tag_id in found
                if tag_id in current and current[tag_id].state == TagAssignment.State.CURRENT
            }
    if operation is None:
        operation = Operation.objects.create(
            kind=Operation.Kind.EDIT,
            status=Operation.Status.APPLIED,
            set_kind=locked.kind,
            created_by=actor,
            params={
                "tag_set": locked.pk,
                "add": list(add),
                "remove": list(remove),
                "replace": list(replace) if replace is not None else None,
            },
            summary=f"edit of {locked.get_kind_display()} set {locked.pk} (item {locked.media_item_id})",
        )
    changes: list[OperationChange] = []
    new_rows: list[TagAssignment] = []
    revived: list[int] = []
    stat: dict[tuple[int, int], int] = {}
    position = max((row.position or 0 for row in current.values()), default=-1) + 1
    for tag, entered in wanted:
        row = current.get(tag.pk)
        if row is not None and row.state == TagAssignment.State.CURRENT:
            continue
        before = OperationChange.State.ABSENT if row is None else OperationChange.State.DELETED
        changes.append(
            OperationChange(
                operation=operation,
                tagset=locked,
                tag=tag,
                media_item_id=locked.media_item_id,
                before_state=before,
                after_state=OperationChange.State.CURRENT,
                before_position=row.position if row else None,
                before_via=row.added_via if row else "",
            )
        )
        stat[(tag.pk, locked.kind)] = stat.get((tag.pk, locked.kind), 0) + 1
        if row is None:
            new_rows.append(
                TagAssignment(
                    tagset=locked,
                    tag=tag,
                    media_item_id=locked.media_item_id,
                    kind=locked.kind,
                    position=position,
                    added_via=via,
                    actor=actor,
                    entered_tag=entered,
                    operation=operation,
                )
            )
            position += 1
        else:
            revived.append(tag.pk)
    for tag_id in removing:
        row = current[tag_id]
        changes.append(
            OperationChange(
                operation=operation,
                tagset=locked,
                tag_id=tag_id,
                media_item_id=locked.media_item_id,
                before_state=OperationChange.State.CURRENT,
                after_state=OperationChange.State.DELETED,
                before_position=row.position,
                before_via=row.added_via,
            )
        )
        stat[(tag_id, locked.kind)] = stat.get((tag_id, locked.kind), 0) - 1
    if new_rows:
        TagAssignment.objects.bulk_create(new_rows)
    if revived:
        TagAssignment.objects.filter(tagset=locked, tag_id__in=revived).update(
            state=TagAssignment.State.CURRENT,
            added_via=via,
            actor=actor,
            operation=operation,
            position=position,
        )
    if removing:
        TagAssignment.objects.filter(tagset=locked, tag_id__in=removing).update(
            state=TagAssignment.State.DELETED, actor=actor, operation=operation
        )
    OperationChange.objects.bulk_create(changes)
    stats_apply(stat)
    count = TagAssignment.objects.filter(tagset=locked, state=TagAssignment.State.CURRENT).count()
    TagSet.objects.filter(pk=locked.pk).update(assignment_count=count, row_version=locked.row_version + 1)
    Operation.objects.filter(pk=operation.pk).update(
        counters={"added": len(new_rows) + len(revived), "removed": len(removing), "items": 1}
    )
    _refresh(locked.media_item_id)
    return operation


@transaction.atomic
def tag_set_promote(
    *, source_set: TagSet, names: Sequence[str] | None = None, min_confidence: int = 0, actor: Any = None
) -> dict[str, Any]:
    """Copy tags from a tagger/source/derived set into the item's curated set, as one logged,
    undoable `promote` operation; creating (and seeding) the curated set is part of it, so its
    undo drops a set it made. A promotion that changes nothing logs nothing (operation None).

    Tags a person removed from the curated set (tombstones) are skipped and reported.
    """
    actor = actor if actor is not None and actor.is_authenticated else None
    operation = Operation.objects.create(
        kind=Operation.Kind.PROMOTE,
        status=Operation.Status.APPLIED,
        set_kind=TagSet.Kind.CURATED,
        created_by=actor,
        params={
            "source_set": source_set.pk,
            "names": list(names) if names is not None else None,
            "min_confidence": min_confidence,
        },
        summary=f"promote from {source_set.get_kind_display()} set {source_set.pk} "
        f"(item {source_set.media_item_id})",
    )
    curated, seeded = _curated_get_or_create(
        media_item=source_set.media_item, actor=actor, vocabulary=source_set.vocabulary, operation=operation
    )
    rows = TagAssignment.objects.filter(tagset=source_set, state=TagAssignment.State.CURRENT).select_related(
        "tag"
    )
    if names is not None:
        wanted = set(tag_names_normalise(raw=list(names), vocabulary=source_set.vocabulary))
        rows = rows.filter(tag__name__in=wanted)
    candidates = [r for r in rows if r.confidence is None or r.confidence >= min_confidence]
    tombstoned = set(
        TagAssignment.objects.filter(tagset=curated, state=TagAssignment.State.DELETED).values_list(
            "tag_id", flat=True
        )
    )
    present = set(
        TagAssignment.objects.filter(tagset=curated, state=TagAssignment.State.CURRENT).values_list(
            "tag_id", flat=True
        )
    )
    blocked = [r.tag.name for r in candidates if r.tag_id in tombstoned]
    to_add = [r.tag.name for r in candidates if r.tag_id not in tombstoned and r.tag_id not in present]
    added = 0
    if to_add:
        seeds = TagAssignment.objects.filter(tagset=curated, operation=operation).values("tag_id")
        seeded_ids = set(seeds.values_list("tag_id", flat=True)) if seeded else set()
        tag_set_edit(
            tag_set=curated, add=to_add, actor=actor, via=TagAssignment.Via.PROMOTE, operation=operation
        )
        TagAssignment.objects.filter(tagset=curated, operation=operation).exclude(
            tag_id__in=seeded_ids
        ).update(origin_set=source_set)
        added = OperationChange.objects.filter(operation=operation).exclude(before_via=SET_CREATED).count()
    if not (seeded or added):
        operation.delete()  # nothing changed: no history entry
        return {"added": to_add, "blocked_by_tombstone": blocked, "operation": None}
    Operation.objects.filter(pk=operation.pk).update(
        counters={"added": added, "seeded": seeded, "removed": 0, "items": 1}
    )
    return {"added": to_add, "blocked_by_tombstone": blocked, "operation": operation.pk}


@transaction.atomic
def tag_set_delete(*, tag_set: TagSet, expected_version: int | None = None) -> None:
    """Delete a whole set and its assignments; the item's effective tags follow."""
    locked = _locked_set(tag_set, expected_version)
    stat: dict[tuple[int, int], int] = {}
    for tag_id in TagAssignment.objects.filter(tagset=locked, state=TagAssignment.State.CURRENT).values_list(
        "tag_id", flat=True
    ):
        stat[(tag_id, locked.kind)] = -1
    item_id = locked.media_item_id
    locked.delete()
    stats_apply(stat)
    _refresh(item_id)
