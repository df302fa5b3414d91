"""Tag types and tag templates (vocabularies): editing, CSV import and export, building a
template from the tags in use, and the keyset-paged tag list the pages and the API share.

CSV files hold `name,type,count,aliases` (header optional), as Danbooru/e621 autocomplete lists
do. Imports are set-based (a bounded number of statements per thousand lines), idempotent (a
re-import updates types and never duplicates tags or aliases) and report errors per line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.deletion import ProtectedError

from apps.core.exceptions import (
    ConflictError,
    DomainError,
)
from apps.tags.models import Tag, TagSet, TagType, Vocabulary
from apps.tags.services.names import (
    is_reserved_prefix,
    tag_type_default,
)

READ_BATCH = 2000

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
WORD_SEPARATORS = {"_": "underscore", " ": "space", "-": "hyphen", "": "none (kept as typed)"}


def invalid_field(field_name: str, message: str, code: str = "tags.invalid") -> DomainError:
    return DomainError(message, code=code, details={"fields": {field_name: [message]}})


def batches(values: list[Any], size: int = READ_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- tag types ------------------------------------------------------------------------------------

TYPE_FIELDS = (
    "key",
    "name",
    "short_keys",
    "color",
    "display_order",
    "caption_order",
    "caption_zone",
    "pinned",
    "droppable",
    "shuffleable",
    "default_dropout",
    "exported",
    "max_per_item",
)


def _type_check(tag_type: TagType) -> None:
    key = tag_type.key = (tag_type.key or "").strip().lower()
    if not _KEY.match(key):
        raise invalid_field("key", "Keys are 1–32 lower-case letters, digits or '_', starting with a letter.")
    stored = (
        TagType.objects.filter(pk=tag_type.pk).values_list("key", flat=True).first() if tag_type.pk else None
    )
    if is_reserved_prefix(key) and key != stored:  # a seeded key that became a qualifier (artist) stays
        raise invalid_field("key", f"'{key}' is a search qualifier; choose another key.", "tags.reserved_key")
    short = [k.strip().lower() for k in (tag_type.short_keys or "").split(",") if k.strip()]
    for item in short:
        if not _KEY.match(item) or is_reserved_prefix(item):
            raise invalid_field("short_keys", f"Short key '{item}' is not a slug or is a search qualifier.")
    tag_type.short_keys = ",".join(dict.fromkeys(short))
    taken = set()
    for other in TagType.objects.exclude(pk=tag_type.pk).only("key", "short_keys"):
        taken.add(other.key)
        taken.update(k.strip() for k in other.short_keys.split(",") if k.strip())
    if clash := sorted(({key} | set(short)) & taken):
        raise ConflictError(
            f"Another tag type already uses the key '{clash[0]}'.",
            code="tags.duplicate_type",
            details={"fields": {"key": [f"'{clash[0]}' is taken."]}},
        )
    if not _COLOR.match(tag_type.color or ""):
        raise invalid_field("color", "Colours are written #rrggbb.")
    tag_type.color = tag_type.color.lower()
    if not 0 <= tag_type.default_dropout <= 10000:
        raise invalid_field("default_dropout", "The dropout rate is 0–10000 (1/10000, so 1000 = 10 %).")
    if tag_type.max_per_item is not None and tag_type.max_per_item < 1:
        raise invalid_field("max_per_item", "Leave empty for no limit, or give at least 1.")
    if not (tag_type.name or "").strip():
        raise invalid_field("name", "A tag type needs a name.")
    tag_type.full_clean(validate_unique=False, validate_constraints=False)


def tag_type_validate(tag_type: TagType) -> None:
    """Check a (possibly unsaved) type as the services would, without saving (admin forms)."""
    _type_check(tag_type)


def _type_save(tag_type: TagType, is_default: bool | None) -> TagType:
    _type_check(tag_type)
    if is_default:
        TagType.objects.exclude(pk=tag_type.pk).filter(is_default_key=True).update(is_default_key=None)
        tag_type.is_default_key = True
    try:
        with transaction.atomic():
            tag_type.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"Another tag type already uses the key '{tag_type.key}'.", code="tags.duplicate_type"
        ) from exc
    return tag_type


@transaction.atomic
def tag_type_create(*, key: str, name: str, is_default: bool = False, **fields: Any) -> TagType:
    """Create a tag type; keys are slugs and never a search qualifier."""
    _only(fields, TYPE_FIELDS)
    return _type_save(TagType(key=key, name=name, **fields), is_default)


@transaction.atomic
def tag_type_update(*, tag_type: TagType, is_default: bool | None = None, **changes: Any) -> TagType:
    """Change a tag type's settings (`is_default=True` makes it the type new tags get)."""
    _only(changes, TYPE_FIELDS)
    tag_type = TagType.objects.select_for_update().get(pk=tag_type.pk)
    if is_default is False and tag_type.is_default_key:
        raise ConflictError(
            "Make another type the default instead; there is always one.", code="tags.type_default"
        )
    for name, value in changes.items():
        setattr(tag_type, name, value)
    return _type_save(tag_type, is_default)


@transaction.atomic
def tag_type_delete(*, tag_type: TagType) -> None:
    """Delete an unused tag type; the default type and types with tags are refused (409)."""
    tag_type = TagType.objects.select_for_update().get(pk=tag_type.pk)
    if tag_type.is_default_key:
        raise ConflictError(
            f"'{tag_type.name}' is the default type; make another type the default first.",
            code="tags.type_default",
            details={"type": tag_type.key},
        )
    used = Tag.objects.filter(type=tag_type).count()
    if used:
        raise ConflictError(
            f"'{tag_type.name}' is used by {used} tag{'s' if used != 1 else ''}; "
            "give them another type first.",
            code="tags.type_in_use",
            details={"type": tag_type.key, "tags": used},
        )
    try:
        tag_type.delete()
    except ProtectedError as exc:
        raise ConflictError(
            f"'{tag_type.name}' is still referenced.", code="tags.type_in_use", details={"type": tag_type.key}
        ) from exc


def _only(fields: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise DomainError(
            f"Unknown fields: {', '.join(sorted(unknown))}.",
            code="tags.not_editable",
            details={"fields": {name: ["Not editable."] for name in sorted(unknown)}},
        )


# --- vocabularies ---------------------------------------------------------------------------------

VOCABULARY_FIELDS = (
    "slug",
    "name",
    "kind",
    "policy",
    "case",
    "word_separator",
    "max_length",
    "default_type",
    "default_tagger_threshold",
)
_RULE_FIELDS = ("case", "word_separator")


def _vocabulary_check(vocabulary: Vocabulary) -> None:
    vocabulary.slug = (vocabulary.slug or "").strip().lower()
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", vocabulary.slug):
        raise invalid_field("slug", "Slugs are lower-case letters, digits, '-' or '_'.")
    if not (vocabulary.name or "").strip():
        raise invalid_field("name", "A tag template needs a name.")
    if vocabulary.word_separator not in WORD_SEPARATORS:
        raise invalid_field("word_separator", "The word separator is '_', ' ', '-' or nothing.")
    if not 1 <= vocabulary.max_length <= 200:
        raise invalid_field("max_length", "Names may be 1–200 characters long.")
    if not 0 <= vocabulary.default_tagger_threshold <= 10000:
        raise invalid_field("default_tagger_threshold", "The threshold is 0–10000 (1/10000).")
    if Vocabulary.objects.exclude(pk=vocabulary.pk).filter(slug=vocabulary.slug).exists():
        raise ConflictError(
            f"A tag template with the slug '{vocabulary.slug}' exists.",
            code="tags.duplicate_vocabulary",
            details={"fields": {"slug": ["This slug is taken."]}},
        )
    vocabulary.full_clean(validate_unique=False, validate_constraints=False)


def vocabulary_validate(vocabulary: Vocabulary) -> None:
    """Check a (possibly unsaved) template as the services would, without saving (admin forms)."""
    _vocabulary_check(vocabulary)


def _vocabulary_save(vocabulary: Vocabulary, is_default: bool | None) -> Vocabulary:
    _vocabulary_check(vocabulary)
    if is_default:
        Vocabulary.objects.exclude(pk=vocabulary.pk).filter(is_default_key=True).update(is_default_key=None)
        vocabulary.is_default_key = True
    try:
        with transaction.atomic():
            vocabulary.save()
    except IntegrityError as exc:
        raise ConflictError(
            f"A tag template with the slug '{vocabulary.slug}' exists.", code="tags.duplicate_vocabulary"
        ) from exc
    return vocabulary


@transaction.atomic
def vocabulary_create(*, slug: str, name: str, is_default: bool = False, **fields: Any) -> Vocabulary:
    """Create a tag template (vocabulary): naming rules, policy, default type and threshold."""
    _only(fields, VOCABULARY_FIELDS)
    fields.setdefault("default_type", tag_type_default())
    return _vocabulary_save(Vocabulary(slug=slug, name=name, **fields), is_default)


@transaction.atomic
def vocabulary_update(
    *, vocabulary: Vocabulary, is_default: bool | None = None, **changes: Any
) -> Vocabulary:
    """Change a template's settings. Case and separator are locked once it has tags: existing
    names were normalised under the old rules."""
    _only(changes, VOCABULARY_FIELDS)
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)
    if is_default is False and vocabulary.is_default_key:
        raise ConflictError(
            "Make another template the default instead; there is always one.", code="tags.vocabulary_default"
        )
    locked = [f for f in _RULE_FIELDS if f in changes and changes[f] != getattr(vocabulary, f)]
    if locked and Tag.objects.filter(vocabulary=vocabulary).exists():
        raise ConflictError(
            f"'{vocabulary.name}' has tags, so its naming rules ({', '.join(locked)}) cannot change; "
            "create a new template and build it from this one instead.",
            code="tags.vocabulary_rules_locked",
            details={"fields": {f: ["Locked: the template has tags."] for f in locked}},
        )
    for name, value in changes.items():
        setattr(vocabulary, name, value)
    return _vocabulary_save(vocabulary, is_default)


@transaction.atomic
def vocabulary_delete(*, vocabulary: Vocabulary) -> None:
    """Delete an empty, non-default template; one with tags or tag sets is refused (409)."""
    vocabulary = Vocabulary.objects.select_for_update().get(pk=vocabulary.pk)
    if vocabulary.is_default_key:
        raise ConflictError(
            f"'{vocabulary.name}' is the default template and cannot be deleted.",
            code="tags.vocabulary_default",
        )
    if (
        Tag.objects.filter(vocabulary=vocabulary).exists()
        or TagSet.objects.filter(vocabulary=vocabulary).exists()
    ):
        raise ConflictError(
            f"'{vocabulary.name}' has tags or tag sets; only empty templates can be deleted.",
            code="tags.vocabulary_in_use",
            details={"vocabulary": vocabulary.slug},
        )
    try:
        vocabulary.delete()
    except ProtectedError as exc:
        raise ConflictError(f"'{vocabulary.name}' is in use.", code="tags.vocabulary_in_use") from exc
