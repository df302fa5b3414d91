"""Hand-made caption values for the logic tests: the spec's running example and helpers."""

from __future__ import annotations

from typing import Any

from apps.training.plan import CaptionEntry, CaptionPolicy, ItemCaption, TypePolicy

ITEM_ID = "i3f9a2c1d0b7e"


def tag(text: str, type_: str = "general", rank: float = 0.0) -> CaptionEntry:
    return CaptionEntry(text=text, type=type_, key=f"t:{text}", rank=rank)


def group(*members: str, type_: str = "group", rank: float = 0.0) -> CaptionEntry:
    joined = ", ".join(members)
    return CaptionEntry(text=joined, type=type_, key=f"g:{joined}", rank=rank, members=members)


def item(*entries: CaptionEntry, item_id: str = ITEM_ID, **descriptions: tuple[str, ...]) -> ItemCaption:
    return ItemCaption(item_id=item_id, entries=entries, descriptions=dict(descriptions))


def policy(types: dict[str, TypePolicy] | None = None, **settings: Any) -> CaptionPolicy:
    return CaptionPolicy(types=types or {}, **settings)


# The spec's example (§4.2): description after the count, one flex order ranked by position,
# one flex drop rate (kohya native).
EXAMPLE_TYPES = {
    "trigger": TypePolicy("trigger", "prefix", 0),
    "count": TypePolicy("count", "prefix", 1),
    "description": TypePolicy("description", "prefix", 2),
    "general": TypePolicy("general", "flex", 0, drop_rate=0.1),
    "group": TypePolicy("group", "flex", 0, drop_rate=0.1, atomic=True),
    "quality": TypePolicy("quality", "suffix", 0),
}


def example_item(**descriptions: tuple[str, ...]) -> ItemCaption:
    if not descriptions:
        descriptions = {"short": ("a girl waving in the snow",)}
    return item(
        tag("mychar", "trigger"),
        tag("1girl", "count"),
        tag("smile", rank=0),
        group("red scarf", "blue mittens", rank=1),
        tag("snow", rank=2),
        tag("masterpiece", "quality"),
        tag("hidden", "internal"),
        **descriptions,
    )


def example_policy(**settings: Any) -> CaptionPolicy:
    types = {**EXAMPLE_TYPES, **settings.pop("types", {})}
    return policy(types, **settings)
