"""Bulk tag operations: what one set gets, decided in Python from its rows' states.

Used by the per-item apply path and by previews (samples), so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.tags.services.assignments import CURRENT
from apps.tags.services.operations.plan import Spec, TagRef

StateOf = Callable[[Any], "tuple[int, int | None, int | None] | None"]


@dataclass
class Decision:
    """What one set gets: tags tombstoned, tags added (key, position, origin set, revived), and the
    added tags left alone because present or blocked by a tombstone."""

    removed: list[Any] = field(default_factory=list)
    added: list[tuple[Any, int | None, int | None, bool]] = field(default_factory=list)
    unchanged: list[Any] = field(default_factory=list)
    blocked: list[Any] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.removed or self.added)


def decide(
    spec: Spec, state_of: StateOf, next_position: int, new_key: Callable[[TagRef], Any] | None = None
) -> Decision | None:
    """The change to one set, given `state_of(tag) -> (state, position, origin_set) | None`.

    None when the set is out of scope (replace and rename touch only sets having a `from` tag).
    Additions revive tombstones unless the spec says otherwise (a person's append revives;
    docs/tags.md#tombstones).
    """

    def key(ref: TagRef) -> Any:
        if ref.id is not None:
            return ref.id
        assert new_key is not None
        return new_key(ref)

    present = []
    for ref in spec.remove:
        state = state_of(key(ref))
        if state is not None and state[0] == CURRENT:
            present.append(key(ref))
    if spec.scoped and not present:
        return None
    anchor = state_of(key(spec.remove[0])) if spec.inherit and spec.remove else None
    decision = Decision(removed=present)
    position = next_position
    for ref in spec.add:
        state = state_of(key(ref))
        if state is not None and state[0] == CURRENT:
            decision.unchanged.append(key(ref))
        elif state is not None and not spec.revive:
            decision.blocked.append(key(ref))
        elif anchor is not None:
            decision.added.append((key(ref), anchor[1], anchor[2], state is not None))
        else:
            decision.added.append((key(ref), position, None, state is not None))
            position += 1
    return decision
