"""Tag writes. The tags issue extends these; the media library stores source tag sets here."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.tags.models import Tag, TagAssignment, TagSet, TagType, Vocabulary

MAX_TAGS_PER_SET = 1000
_FORBIDDEN_CHARS = {",", "*"}


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch)[0] == "C" for ch in text)


def tag_name_normalise(*, raw: str, vocabulary: Vocabulary) -> str:
    """Vocabulary rules applied to one name: NFC, trimmed, case, whitespace → separator.

    Raises DomainError naming the tag when it cannot be a tag name.
    """
    if not isinstance(raw, str):
        raise DomainError("Tags must be strings.", code="tags.invalid_name")
    name = unicodedata.normalize("NFC", raw).strip()
    if _has_control(name):
        raise DomainError(
            f"Tag {name!r} contains control characters.",
            code="tags.invalid_name",
            details={"tag": name},
        )
    name = " ".join(name.split())
    if vocabulary.word_separator:
        name = name.replace(" ", vocabulary.word_separator)
    if vocabulary.case == Vocabulary.Case.LOWER:
        name = name.lower()
    if not name:
        raise DomainError("Empty tag names are not allowed.", code="tags.invalid_name")
    if len(name) > vocabulary.max_length:
        raise DomainError(
            f"Tag {name[:40]!r}… is longer than {vocabulary.max_length} characters.",
            code="tags.invalid_name",
            details={"tag": name[:200]},
        )
    bad = sorted(ch for ch in _FORBIDDEN_CHARS if ch in name)
    if bad or name[0] in "-~(" or name in ("or", "and"):
        raise DomainError(
            f"Tag {name!r} may not contain {', '.join(bad) or 'that'}: names cannot contain ',' "
            "or '*', start with '-', '~' or '(', or be 'or'/'and'.",
            code="tags.invalid_name",
            details={"tag": name},
        )
    return name


def tag_names_normalise(*, raw: Sequence[Any], vocabulary: Vocabulary) -> list[str]:
    """Normalise a list of names, dropping duplicates but keeping the first order."""
    if len(raw) > MAX_TAGS_PER_SET:
        raise DomainError(
            f"At most {MAX_TAGS_PER_SET} tags per tag set ({len(raw)} given).",
            code="tags.too_many",
        )
    seen: dict[str, None] = {}
    for entry in raw:
        seen.setdefault(tag_name_normalise(raw=entry, vocabulary=vocabulary), None)
    return list(seen)


def vocabulary_default() -> Vocabulary:
    """The default vocabulary (seeded by migration; recreated if someone deleted it)."""
    vocabulary = Vocabulary.objects.filter(is_default_key=True).first()
    if vocabulary is None:
        vocabulary, _ = Vocabulary.objects.get_or_create(
            slug="default", defaults={"name": "Default", "is_default_key": True}
        )
    return vocabulary


def tag_type_default() -> TagType:
    """The type given to tags nobody has typed yet ('general')."""
    tag_type = TagType.objects.filter(is_default_key=True).first()
    if tag_type is None:
        tag_type, _ = TagType.objects.get_or_create(
            key="general", defaults={"name": "General", "is_default_key": True}
        )
    return tag_type


def tags_get_or_create(*, vocabulary: Vocabulary, names: Iterable[str]) -> dict[str, Tag]:
    """Tags by normalised name, creating the missing ones in one statement (race-safe)."""
    wanted = list(dict.fromkeys(names))
    found = {t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=wanted)}
    missing = [name for name in wanted if name not in found]
    if missing:
        if vocabulary.policy == Vocabulary.Policy.CLOSED:
            raise DomainError(
                f"Vocabulary {vocabulary.slug!r} is closed and does not know: {', '.join(missing[:20])}.",
                code="tags.unknown_tag",
                details={"unknown": missing[:100]},
            )
        tag_type = vocabulary.default_type or tag_type_default()
        Tag.objects.bulk_create(
            [Tag(vocabulary=vocabulary, name=name, display_name=name, type=tag_type) for name in missing],
            ignore_conflicts=True,
        )
        found.update({t.name: t for t in Tag.objects.filter(vocabulary=vocabulary, name__in=missing)})
    return found


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
