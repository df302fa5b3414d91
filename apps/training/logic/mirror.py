"""Caption-aware mirroring (docs/export-captions.md#mirroring): a flipped copy swaps left and
right in its tags and descriptions; some tags (text, logos, asymmetric marks) forbid flipping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from apps.training.plan import CaptionEntry, ItemCaption

# "left"/"right" as a whole word: not inside a longer word (letters or digits around it);
# underscores and spaces separate words, so `left_hand` and `looking to the left` swap.
_DIRECTION = re.compile(r"(?<![^\W_])(left|right)(?![^\W_])", re.IGNORECASE)
_SWAP = {"left": "right", "right": "left"}


def swap_text(text: str) -> str:
    """`text` with every whole-word left and right exchanged, keeping the case pattern."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        other = _SWAP[word.lower()]
        if word.isupper():
            return other.upper()
        if word[0].isupper():
            return other.capitalize()
        return other

    return _DIRECTION.sub(swap, text)


def _swap_entry(entry: CaptionEntry) -> CaptionEntry:
    members = tuple(swap_text(member) for member in entry.members)
    text = swap_text(entry.text)
    if entry.key.startswith("g:") and members:
        key = "g:" + ", ".join(members)
    elif entry.key.startswith("t:"):
        key = "t:" + text
    else:
        key = entry.key
    return replace(entry, text=text, key=key, members=members)


def swap_directional(item: ItemCaption) -> ItemCaption:
    """The caption of a mirrored copy: left and right exchanged in tags, groups (and their
    decision keys) and descriptions. The item id is left to the caller (`<id>-m`)."""
    return replace(
        item,
        entries=tuple(_swap_entry(entry) for entry in item.entries),
        descriptions={
            name: tuple(swap_text(text) for text in texts) for name, texts in item.descriptions.items()
        },
    )


def _norm(text: str) -> str:
    return " ".join(text.replace("_", " ").lower().split())


def mirror_blocked(item: ItemCaption, block_tags: Iterable[str]) -> bool:
    """Whether any of the item's tags or group members is a tag that forbids mirroring
    (compared case-insensitively, underscores as spaces)."""
    blocked = {_norm(tag) for tag in block_tags}
    if not blocked:
        return False
    texts = [entry.text for entry in item.entries] + [m for entry in item.entries for m in entry.members]
    return any(_norm(text) in blocked for text in texts)
