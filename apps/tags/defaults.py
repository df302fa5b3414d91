"""The default tag types and vocabulary every library starts with (users may edit them)."""

from __future__ import annotations

from typing import Any

from apps.tags.models import TagType, Vocabulary

# key, name, colour, zone, pinned, droppable, shuffleable, exported, max per item, short keys
TYPES = [
    ("trigger", "Trigger word", "#7c3aed", "prefix", True, False, False, True, None, "trig"),
    ("description", "Description", "#0ea5e9", "suffix", False, True, False, True, None, "desc"),
    ("character", "Character", "#16a34a", "prefix", False, False, True, True, None, "char"),
    ("copyright", "Copyright / series", "#c026d3", "prefix", False, True, True, True, None, "copy,series"),
    ("artist", "Artist", "#dc2626", "prefix", False, True, True, True, None, "art"),
    ("general", "General", "#2563eb", "flex", False, True, True, True, None, "gen"),
    ("meta", "Meta", "#ea580c", "suffix", False, True, True, False, None, ""),
    ("rating", "Rating", "#6b7280", "suffix", False, False, False, True, 1, ""),
    ("quality", "Quality", "#ca8a04", "suffix", False, False, False, True, None, "qual"),
]


def defaults_ensure(*, tag_type_model: Any = None, vocabulary_model: Any = None) -> None:
    """Create the default types and vocabulary when missing (never changes edited ones).

    Runs from the seed migration and after every `migrate`/`flush` (post_migrate), so a
    flushed test database gets them back like Django's own permissions.
    """
    if tag_type_model is None or vocabulary_model is None:
        tag_type_model, vocabulary_model = TagType, Vocabulary
    by_key = {}
    for order, (key, name, color, zone, pinned, droppable, shuffle, exported, max_n, short) in enumerate(
        TYPES
    ):
        by_key[key], _ = tag_type_model.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "color": color,
                "caption_zone": zone,
                "pinned": pinned,
                "droppable": droppable,
                "shuffleable": shuffle,
                "exported": exported,
                "max_per_item": max_n,
                "short_keys": short,
                "display_order": order * 10,
                "caption_order": order * 10,
                "is_default_key": True if key == "general" else None,
            },
        )
    if not vocabulary_model.objects.filter(is_default_key=True).exists():
        vocabulary_model.objects.get_or_create(
            slug="default",
            defaults={
                "name": "Default",
                "kind": "booru",
                "policy": "open",
                "case": "lower",
                "word_separator": "_",
                "default_type": by_key["general"],
                "is_default_key": True,
            },
        )
