"""Caption items resolved against the caption policy: zone, file order, drop rate, cleaned text
(docs/export-captions.md#zones). The renderers in `captions.py` work on these `Piece`s."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.training.plan import CaptionEntry, CaptionPolicy, ItemCaption, TypePolicy, Zone

# The seeded tag types (docs/export-captions.md#zones); a policy's own entries win.
DEFAULT_TYPES: dict[str, TypePolicy] = {
    "trigger": TypePolicy("trigger", "prefix", 0),
    "description": TypePolicy("description", "prefix", 1),
    "count": TypePolicy("count", "prefix", 2),
    "character": TypePolicy("character", "prefix", 3),
    "series": TypePolicy("series", "prefix", 4),
    "artist": TypePolicy("artist", "prefix", 5),
    "general": TypePolicy("general", "flex", 0, drop_rate=0.10),
    "group": TypePolicy("group", "flex", 1, drop_rate=0.05, atomic=True),
    "quality": TypePolicy("quality", "suffix", 0),
    "rating": TypePolicy("rating", "suffix", 1),
    "meta": TypePolicy("meta", "suffix", 2),
    "internal": TypePolicy("internal", "excluded"),
    "negative": TypePolicy("negative", "excluded"),
}
DESCRIPTION = "description"
TRIGGER = "trigger"
ZONES: tuple[Zone, ...] = ("prefix", "flex", "suffix")

_SPACES = re.compile(r"\s+")
_COMMAS = re.compile(r"\s*,\s*")
_PAREN = re.compile(r"(?<!\\)([()])")


@dataclass(frozen=True)
class Piece:
    """One caption item in one line: a tag, a group, a description or a TI token."""

    key: str  # decision key: t:<tag>, g:<members>, d:<set>:<n>, or "token"
    kind: str  # "tag" | "group" | "desc" | "token"
    type: str
    zone: Zone
    order: tuple[int, float, str]  # file order inside the zone
    parts: tuple[str, ...]  # a group's members, a description's comma pieces, else one text
    drop_rate: float = 0.0
    budget_priority: int = 0

    def text(self, separator: str = ", ") -> str:
        """The item's text with its internal commas written as `separator`."""
        return separator.join(self.parts)


def type_policy(policy: CaptionPolicy, type_key: str) -> TypePolicy:
    """A type's export settings: the policy's, else the seeded default, else plain flex."""
    found = policy.types.get(type_key) or DEFAULT_TYPES.get(type_key)
    return found if found is not None else TypePolicy(type_key)


def clean_tag(text: str, policy: CaptionPolicy) -> str:
    """Tag text as the base-model profile writes it: underscores to spaces (booru profiles),
    whitespace collapsed, parentheses escaped `\\(` `\\)` when the profile asks (idempotent)."""
    if policy.underscores_to_spaces:
        text = text.replace("_", " ")
    text = _SPACES.sub(" ", text).strip()
    if policy.escape_parentheses:
        text = _PAREN.sub(r"\\\1", text)
    return text


def clean_description(text: str) -> tuple[str, ...]:
    """A description's comma-separated pieces, whitespace collapsed (underscores kept)."""
    text = _SPACES.sub(" ", text).strip()
    return tuple(piece for piece in _COMMAS.split(text) if piece)


def entry_pieces(item: ItemCaption, policy: CaptionPolicy) -> list[Piece]:
    """The item's tags and groups with their type's zone, in file order within each zone;
    excluded types and blank texts left out."""
    pieces = []
    for entry in item.entries:
        tp = type_policy(policy, entry.type)
        if tp.zone == "excluded":
            continue
        piece = _entry_piece(entry, tp, policy)
        if piece.parts:  # a tag that cleans to nothing would be an empty item
            pieces.append(piece)
    return in_file_order(pieces)


def _entry_piece(entry: CaptionEntry, tp: TypePolicy, policy: CaptionPolicy) -> Piece:
    if entry.members:
        parts = tuple(clean_tag(member, policy) for member in entry.members)
        kind = "group"
    else:
        parts = (clean_tag(entry.text, policy),)
        kind = "tag"
    parts = tuple(part for part in parts if part)
    return Piece(
        key=entry.key,
        kind=kind,
        type=entry.type,
        zone=tp.zone,
        order=(tp.zone_order, entry.rank, ", ".join(parts)),
        parts=parts,
        drop_rate=tp.drop_rate,
        budget_priority=tp.budget_priority,
    )


def description_piece(policy: CaptionPolicy, set_name: str, index: int, text: str) -> Piece | None:
    """Description `index` of set `set_name` as a piece (None when its type is excluded or the
    text is blank)."""
    tp = type_policy(policy, DESCRIPTION)
    parts = clean_description(text)
    if tp.zone == "excluded" or not parts:
        return None
    return Piece(
        key=f"d:{set_name}:{index}",
        kind="desc",
        type=DESCRIPTION,
        zone=tp.zone,
        order=(tp.zone_order, 0.0, ", ".join(parts)),
        parts=parts,
        drop_rate=0.0,
        budget_priority=tp.budget_priority,
    )


def token_piece(token: str) -> Piece:
    """A Textual Inversion token: first in the prefix, never dropped or trimmed."""
    return Piece(
        key="token", kind="token", type=TRIGGER, zone="prefix", order=(-1, 0.0, token), parts=(token,)
    )


def in_file_order(pieces: list[Piece]) -> list[Piece]:
    """Pieces sorted by zone, then (zone_order, rank, text)."""
    return sorted(pieces, key=lambda piece: (ZONES.index(piece.zone), piece.order))


def description_sets(item: ItemCaption, policy: CaptionPolicy) -> list[tuple[str, int, tuple[str, ...]]]:
    """(set name, weight, descriptions) for the item's sets with a weight and a description,
    sorted by name. A set the policy does not weigh counts 1."""
    sets = []
    for name in sorted(item.descriptions):
        texts = tuple(text for text in item.descriptions[name] if clean_description(text))
        weight = policy.alternates.get(name, 1)
        if texts and weight > 0:
            sets.append((name, weight, texts))
    return sets
