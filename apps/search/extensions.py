"""Extension points of the search app, filled by higher apps in their AppConfig.ready()
(docs/query-language.md#has-values-from-other-apps).

* `has:` values: `has_value_register(value="stale_mapping", condition=…)` adds a value to the
  `has:` qualifier; `condition(outer)` returns a Q over MediaItem whose item id is the column
  `outer` (an `Exists(...)` on the registering app's table). The mappings app registers
  `stale_mapping` this way, so search never imports it.
* Ranked qualifiers: `ranked_qualifier_register(name="clip", read=…, rank=…, help=…)` adds a
  qualifier (`clip:"red circle"`) whose value `read(text)` parses (raising
  `apps.search.query.values.ValueProblem`) and `rank(parsed)` turns into item ids, best first
  (at most a few thousand). The query matches those items and, unless it says another
  `order:`, lists them best first (`order:similarity`). `similar_mode_register(mode="emb", …)`
  does the same for `similar:<item id>,<mode>[…]`, where `read` gets the whole value. The
  taggers app registers embedding similarity and text-to-image search this way
  (docs/query-language.md#ranked-terms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

HasCondition = Callable[[str], Q]
_has: dict[str, HasCondition] = {}


def has_value_register(*, value: str, condition: HasCondition) -> None:
    """Add `has:<value>` (lower case; registering a value twice replaces its condition)."""
    _has[value.lower()] = condition


def has_condition(value: str) -> HasCondition | None:
    return _has.get(value)


def has_values() -> tuple[str, ...]:
    return tuple(_has)


@dataclass(frozen=True)
class Ranked:
    """A registered ranked qualifier or `similar:` mode."""

    read: Callable[[str], Any]
    rank: Callable[[Any], Sequence[int]]
    help: str


_ranked: dict[str, Ranked] = {}
_similar_modes: dict[str, Ranked] = {}


def ranked_qualifier_register(
    *, name: str, read: Callable[[str], Any], rank: Callable[[Any], Sequence[int]], help: str
) -> None:
    """Add the qualifier `<name>:` (lower case) whose matches are ranked item ids."""
    _ranked[name.lower()] = Ranked(read, rank, help)


def ranked_qualifier(name: str) -> Ranked | None:
    return _ranked.get(name)


def ranked_qualifiers() -> frozenset[str]:
    return frozenset(_ranked)


def similar_mode_register(
    *, mode: str, read: Callable[[str], Any], rank: Callable[[Any], Sequence[int]], help: str
) -> None:
    """Add `similar:<item id>,<mode>…` (the perceptual hash stays `similar:<id>[,<distance>]`)."""
    _similar_modes[mode.lower()] = Ranked(read, rank, help)


def similar_mode(mode: str) -> Ranked | None:
    return _similar_modes.get(mode)


def similar_modes() -> tuple[str, ...]:
    return tuple(_similar_modes)
