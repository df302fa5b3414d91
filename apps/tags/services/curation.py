"""Curated sets: created and seeded on first use, edited by people, filled by promotion.

Every change here is a list of transitions for the one writer (`assignments.py`); this module
decides what changes: names a person typed are normalised, typed (`char:x`), alias-resolved and
refused when deprecated; a person's add revives a tombstone, a promotion skips it
(docs/tags.md#tombstones); a stale `expected_version` is a 409, never a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.media.models import MediaItem
from apps.tags import slots
from apps.tags.models import AliasResolution, Operation, Tag, TagAssignment, TagSet, Vocabulary
from apps.tags.services.assignments import (
    ABSENT,
    CURRENT,
    DELETED,
    Transition,
    assignments_write,
    curated_seeds,
    curated_sets_create,
    seed_transitions,
)
from apps.tags.services.effective import effective_refresh
from apps.tags.services.names import (
    tag_names_normalise,
    tag_names_split,
    tags_get_or_create,
    vocabulary_default,
)

EDITABLE_KINDS = {TagSet.Kind.CURATED}
REMOVABLE_KINDS = {TagSet.Kind.CURATED, TagSet.Kind.TAGGER, TagSet.Kind.DERIVED}


def _actor(actor: Any) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


def locked_set(tag_set: TagSet, expected_version: int | None) -> TagSet:
    """The set, row-locked after its item (the order bulk chunks and undo take: item, then set,
    then tags; the other order deadlocks against them on MariaDB); 409 when the caller saw
    another version."""
    list(MediaItem.objects.select_for_update().filter(pk=tag_set.media_item_id).values_list("pk"))
    locked = TagSet.objects.select_for_update().get(pk=tag_set.pk)
    if expected_version is not None and expected_version != locked.row_version:
        raise ConflictError(
            f"Tag set {locked.pk} changed since you loaded it (version {expected_version}, now "
            f"{locked.row_version}); reload and apply your edit again.",
            code="tags.stale_version",
            details={"row_version": locked.row_version},
        )
    return locked


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
    ideal_tags = {t.pk: t for t in tags.values()}
    if ideal:
        ideal_tags.update({t.pk: t for t in Tag.objects.filter(pk__in=set(ideal.values()))})
    resolved: list[tuple[Any, str]] = []
    seen: set[int] = set()
    for name in clean:
        tag = ideal_tags[ideal.get(tags[name].pk, tags[name].pk)]
        if tag.pk not in seen:
            seen.add(tag.pk)
            resolved.append((tag, name))
    return resolved


# --- creating and seeding -----------------------------------------------------------------------


def tag_set_curated_get_or_create(
    *, media_item: Any, actor: Any = None, vocabulary: Vocabulary | None = None
) -> TagSet:
    """The item's curated set; created on first use, seeded from its source and derived tags
    (tagger output is never copied in silently) so a first edit does not hide what it had."""
    return curated_get_or_create(media_item=media_item, actor=actor, vocabulary=vocabulary)[0]


def curated_get_or_create(
    *, media_item: Any, actor: Any = None, vocabulary: Vocabulary | None = None, operation: Any = None
) -> tuple[TagSet, int]:
    """(curated set, rows seeded now: 0 when it existed). With `operation`, the seeded rows are
    that operation's own and logged as changes of a set it created, so undoing it drops the set."""
    vocabulary = vocabulary or vocabulary_default()
    lookup = {
        "media_item": media_item,
        "kind": TagSet.Kind.CURATED,
        "vocabulary": vocabulary,
        "slot": slots.CURATED,
    }
    existing = TagSet.objects.filter(**lookup).first()
    if existing is not None:
        return existing, 0
    actor = _actor(actor)
    with transaction.atomic():
        # Item first, as every writer locks (item, set, tags): a bulk chunk on this item waits here.
        list(MediaItem.objects.select_for_update().filter(pk=media_item.pk).values_list("pk"))
        try:
            with transaction.atomic():
                created = curated_sets_create(
                    item_ids=[media_item.pk],
                    vocabulary_id=vocabulary.pk,
                    actor_id=actor.pk if actor else None,
                )
        except IntegrityError:  # someone else created it meanwhile
            return TagSet.objects.get(**lookup), 0
        seed = curated_seeds(item_ids=[media_item.pk], vocabulary_id=vocabulary.pk).get(media_item.pk, {})
        written = assignments_write(
            seed_transitions(media_item.pk, seed, logged=operation is not None),
            kind=TagSet.Kind.CURATED,
            operation_id=operation.pk if operation is not None else None,
            actor_id=actor.pk if actor else None,
            new_sets=created,
        )
        if not written.changes:  # an empty set still replaces the item's source tags as its base
            effective_refresh(item_ids=[media_item.pk])
    return TagSet.objects.get(pk=created[media_item.pk]), len(seed)


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


# --- editing ------------------------------------------------------------------------------------


def _check_editable(locked: TagSet, *, adding: bool, removing: bool) -> None:
    if adding and locked.kind not in EDITABLE_KINDS:
        raise DomainError(
            f"A {locked.get_kind_display()} set keeps what arrived; add tags to the curated set instead.",
            code="tags.set_read_only",
            details={"kind": locked.get_kind_display()},
        )
    if removing and locked.kind not in REMOVABLE_KINDS:
        raise DomainError(
            "Tags of a source set cannot be removed; curate them in the curated set.",
            code="tags.set_read_only",
        )


def _removing(
    locked: TagSet, current: dict[int, TagAssignment], remove: Sequence[Any], keep: set[int] | None
) -> set[int]:
    """Tag ids to tombstone: with `keep` (a replace), every current tag not kept; else the
    named ones the set has (removing a name nobody used must not create it)."""
    now = {tag_id for tag_id, row in current.items() if row.state == CURRENT}
    if keep is not None:
        return now - keep
    names = [n for n in remove if isinstance(n, str)]
    if not names:
        return set()
    clean = tag_names_normalise(raw=names, vocabulary=locked.vocabulary)
    found = Tag.objects.filter(vocabulary=locked.vocabulary, name__in=clean).values_list("pk", flat=True)
    return now & set(found)


def _edit_transitions(
    locked: TagSet,
    current: dict[int, TagAssignment],
    wanted: Sequence[tuple[Any, str]],
    removing: set[int],
    *,
    via: str,
    origin_set_id: int | None = None,
) -> list[Transition]:
    """Added tags go to the end of the set (new rows, or revived tombstones), removed ones become
    tombstones in place."""
    item_id = locked.media_item_id
    position = max((row.position or 0 for row in current.values()), default=-1) + 1
    out: list[Transition] = []
    for tag, entered in wanted:
        row = current.get(tag.pk)
        if row is not None and row.state == CURRENT:
            continue
        out.append(
            Transition(
                set_id=locked.pk,
                tag_id=tag.pk,
                item_id=item_id,
                before=ABSENT if row is None else DELETED,
                after=CURRENT,
                position=position,
                via=via,
                origin_set_id=origin_set_id,
                set_origin=origin_set_id is not None,
                entered=entered,
                before_position=row.position if row else None,
                before_via=row.added_via if row else "",
            )
        )
        position += 1
    for tag_id in sorted(removing):
        row = current[tag_id]
        out.append(
            Transition(
                set_id=locked.pk,
                tag_id=tag_id,
                item_id=item_id,
                before=CURRENT,
                after=DELETED,
                before_position=row.position,
                before_via=row.added_via,
            )
        )
    return out


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
) -> Any:
    """Add, remove or replace a set's tags as one logged, undoable `edit` operation.

    Removal keeps a tombstone; a person's add revives one. Curated additions resolve aliases and
    refuse deprecated tags. A stale `expected_version` is a 409, never a silent overwrite.
    """
    locked = locked_set(tag_set, expected_version)
    _check_editable(locked, adding=bool(add) or replace is not None, removing=bool(remove))
    actor = _actor(actor)
    current = {row.tag_id: row for row in TagAssignment.objects.filter(tagset=locked)}
    wanted = _resolve_for_people(names=replace if replace is not None else add, vocabulary=locked.vocabulary)
    removing = _removing(locked, current, remove, {t.pk for t, _ in wanted} if replace is not None else None)
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
    transitions = _edit_transitions(locked, current, wanted, removing, via=via)
    assignments_write(
        transitions, kind=locked.kind, operation_id=operation.pk, actor_id=actor.pk if actor else None
    )
    added = sum(1 for t in transitions if t.after == CURRENT)
    Operation.objects.filter(pk=operation.pk).update(
        counters={"added": added, "removed": len(transitions) - added, "items": 1}
    )
    return operation


@transaction.atomic
def tag_set_promote(
    *, source_set: TagSet, names: Sequence[str] | None = None, min_confidence: int = 0, actor: Any = None
) -> dict[str, Any]:
    """Copy tags from a tagger/source/derived set into the item's curated set, as one logged,
    undoable `promote` operation; creating (and seeding) the curated set is part of it, so its
    undo drops a set it made (and undoing that undo promotes again). A promotion that changes
    nothing logs nothing (operation None).

    Tags a person removed from the curated set (tombstones) are skipped and reported.
    """
    actor = _actor(actor)
    params = {
        "source_set": source_set.pk,
        "names": list(names) if names is not None else None,
        "min_confidence": min_confidence,
    }
    operation = Operation.objects.create(
        kind=Operation.Kind.PROMOTE,
        status=Operation.Status.APPLIED,
        set_kind=TagSet.Kind.CURATED,
        created_by=actor,
        params=params,
        summary=f"promote from {source_set.get_kind_display()} set {source_set.pk} "
        f"(item {source_set.media_item_id})",
    )
    seeded, to_add, added, blocked = _promote(operation, source_set, params, actor)
    if not (seeded or added):
        operation.delete()  # nothing changed: no history entry
        return {"added": to_add, "blocked_by_tombstone": blocked, "operation": None}
    Operation.objects.filter(pk=operation.pk).update(
        counters={"added": added, "seeded": seeded, "removed": 0, "items": 1}
    )
    return {"added": to_add, "blocked_by_tombstone": blocked, "operation": operation.pk}


def promote_again(*, operation: Any, params: dict[str, Any]) -> int:
    """Redo a promotion (params as `tag_set_promote` logged them) as part of `operation`;
    returns the rows it changed (0 when the source set is gone)."""
    source_set = (
        TagSet.objects.filter(pk=int(params.get("source_set") or 0)).select_related("media_item").first()
    )
    if source_set is None:
        return 0
    actor = operation.created_by  # the one redoing (None: the system)
    seeded, _to_add, added, _blocked = _promote(operation, source_set, params, actor)
    return seeded + added


def _promote(
    operation: Any, source_set: TagSet, params: dict[str, Any], actor: Any
) -> tuple[int, list[str], int, list[str]]:
    """(rows seeded, names to add, rows added, names blocked by a tombstone)."""
    curated, seeded = curated_get_or_create(
        media_item=source_set.media_item, actor=actor, vocabulary=source_set.vocabulary, operation=operation
    )
    rows = TagAssignment.objects.filter(tagset=source_set, state=CURRENT).select_related("tag")
    if params.get("names") is not None:
        names = set(tag_names_normalise(raw=list(params["names"]), vocabulary=source_set.vocabulary))
        rows = rows.filter(tag__name__in=names)
    candidates = [r for r in rows if r.confidence is None or r.confidence >= params.get("min_confidence", 0)]
    locked = locked_set(curated, None)
    current = {row.tag_id: row for row in TagAssignment.objects.filter(tagset=locked)}
    blocked = [r.tag.name for r in candidates if r.tag_id in current and current[r.tag_id].state == DELETED]
    to_add = [r.tag.name for r in candidates if r.tag_id not in current]
    if not to_add:
        return seeded, to_add, 0, blocked
    wanted = []
    for tag, entered in _resolve_for_people(names=to_add, vocabulary=locked.vocabulary):
        row = current.get(tag.pk)  # an alias may resolve to a tag a person removed: skipped too
        if row is not None and row.state == DELETED:
            blocked.append(tag.name)
        else:
            wanted.append((tag, entered))
    transitions = _edit_transitions(
        locked, current, wanted, set(), via=TagAssignment.Via.PROMOTE, origin_set_id=source_set.pk
    )
    assignments_write(
        transitions, kind=TagSet.Kind.CURATED, operation_id=operation.pk, actor_id=actor.pk if actor else None
    )
    return seeded, to_add, len(transitions), blocked


@transaction.atomic
def curated_reject(
    *, media_item: Any, tag: Tag, actor: Any = None, source_set: TagSet | None = None
) -> dict[str, Any]:
    """A person says the item does not have `tag` (a rejected tagger prediction): the curated
    set keeps a tombstone for it (the set is created and seeded first when missing), as one
    logged, undoable `edit` operation. Automatic processes never revive it, and tagger training
    reads it as a negative (docs/taggers.md#review). Rejecting twice changes nothing."""
    actor = _actor(actor)
    operation = Operation.objects.create(
        kind=Operation.Kind.EDIT,
        status=Operation.Status.APPLIED,
        set_kind=TagSet.Kind.CURATED,
        created_by=actor,
        params={"reject": tag.name, "source_set": source_set.pk if source_set is not None else None},
        summary=f"reject {tag.name} on item {media_item.pk}",
    )
    curated, seeded = curated_get_or_create(
        media_item=media_item, actor=actor, vocabulary=tag.vocabulary, operation=operation
    )
    locked = locked_set(curated, None)
    row = TagAssignment.objects.filter(tagset=locked, tag=tag).first()
    if row is not None and row.state == DELETED:
        if not seeded:
            operation.delete()
        return {"rejected": tag.name, "changed": False, "operation": operation.pk if seeded else None}
    transition = Transition(
        set_id=locked.pk,
        tag_id=tag.pk,
        item_id=media_item.pk,
        before=CURRENT if row is not None else ABSENT,
        after=DELETED,
        via=TagAssignment.Via.MANUAL if row is None else "",
        before_position=row.position if row is not None else None,
        before_via=row.added_via if row is not None else "",
    )
    assignments_write(
        [transition],
        kind=TagSet.Kind.CURATED,
        operation_id=operation.pk,
        actor_id=actor.pk if actor else None,
    )
    Operation.objects.filter(pk=operation.pk).update(
        counters={"added": 0, "removed": 1, "seeded": seeded, "items": 1}
    )
    return {"rejected": tag.name, "changed": True, "operation": operation.pk}
