"""Tag names: normalisation per vocabulary, defaults, and creating tags in bulk."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from apps.core.exceptions import DomainError
from apps.tags.models import Tag, TagType, Vocabulary

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
