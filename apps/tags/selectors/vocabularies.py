"""The default vocabulary and tag type every name falls back to."""

from __future__ import annotations

from apps.tags.models import TagType, Vocabulary


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
