"""The tagger-training target's pure logic (docs/export-bundle.md#wd-tagger): an item's labels,
WD categories, the `selected_tags.csv` row order and the label lint (L01 for an item without
labels, L18 for a label too rare to learn). Inputs are `apps.training.plan` values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from apps.training.logic.lint import Finding
from apps.training.plan import ItemCaption

# The project's tag types → WD's numeric categories (Danbooru's: general 0, artist 1,
# copyright 3, character 4, meta 5; the WD taggers add rating 9). Quality tags are Danbooru
# meta-like; a trigger word is one more label; any other (custom) type counts as general.
CATEGORIES: dict[str, int] = {
    "general": 0,
    "trigger": 0,
    "artist": 1,
    "copyright": 3,
    "character": 4,
    "meta": 5,
    "quality": 5,
    "rating": 9,
}
RATING = 9
MIN_IMAGES = 10  # L18: a label on fewer images than this is too rare for a tagger to learn


def category(type_key: str) -> int:
    return CATEGORIES.get(type_key, 0)


def label_name(text: str) -> str:
    """A tag's name in the WD convention: no spaces (underscores), trimmed."""
    return "_".join(text.split())


def labels(caption: ItemCaption) -> list[tuple[str, int]]:
    """The item's labels as (name, WD category), unique, in caption order; a group (atomic type)
    gives each of its members. Descriptions are no labels."""
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for entry in caption.entries:
        for text in entry.members or (entry.text,):
            name = label_name(text)
            if name and name not in seen:
                seen.add(name)
                out.append((name, category(entry.type)))
    return out


def selected_rows(counts: Mapping[tuple[str, int], int]) -> list[tuple[int, str, int, int]]:
    """`selected_tags.csv` rows (tag_id, name, category, count) from (name, category) → images.
    WD order: ratings first, then by category, count descending, name; tag_id = the row's index
    (a tagger's output vector follows the rows). A name met under two categories keeps the one
    with more images (then the lower category)."""
    best: dict[str, tuple[int, int]] = {}
    for (name, cat), count in counts.items():
        current = best.get(name)
        if current is None or (count, -cat) > (current[1], -current[0]):
            best[name] = (cat, count)
    ordered = sorted(best.items(), key=lambda kv: (kv[1][0] != RATING, kv[1][0], -kv[1][1], kv[0]))
    return [(n, name, cat, count) for n, (name, (cat, count)) in enumerate(ordered)]


def lint_labels(found: list[tuple[str, int]], *, item: str | None = None) -> list[Finding]:
    """L01: an item without any label teaches the tagger nothing (add tags, or change the type
    policies that exclude them)."""
    if found:
        return []
    return [
        Finding(
            "L01",
            "error",
            "the item has no label for the tagger (add tags or include their types in the type policies)",
            item,
        )
    ]


def lint_counts(
    counts: Iterable[tuple[int, str, int, int]], *, min_images: int = MIN_IMAGES
) -> list[Finding]:
    """L18 (warning): a label on fewer than `min_images` images of the export."""
    return [
        Finding(
            "L18",
            "warning",
            f"label {name!r} is on {count} image(s), fewer than {min_images}: too rare to learn; "
            "add images carrying it or map it away",
            path=f"wd-tagger/selected_tags.csv:{name}",
        )
        for _tag_id, name, _cat, count in counts
        if count < min_images
    ]
