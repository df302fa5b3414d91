"""Extension points of the search app, filled by higher apps in their AppConfig.ready()
(docs/query-language.md#has-values-from-other-apps).

* `has:` values: `has_value_register(value="stale_mapping", condition=…)` adds a value to the
  `has:` qualifier; `condition(outer)` returns a Q over MediaItem whose item id is the column
  `outer` (an `Exists(...)` on the registering app's table). The mappings app registers
  `stale_mapping` this way, so search never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

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
