"""Bulk tag operations: the counters a chunk reports and how chunks add up."""

from __future__ import annotations

from typing import Any

from apps.tags.services.operations.plan import Spec


def new_counters(spec: Spec | None) -> dict[str, Any]:
    names = [r.name for r in (*spec.remove, *spec.add)] if spec else []
    return {
        "matched_items": 0,
        "items_changing": 0,
        "sets_created": 0,
        "seeded": 0,
        "changes": 0,
        "tags": {
            n: {"added": 0, "removed": 0, "unchanged": 0, "blocked_by_tombstone": 0, "revived": 0}
            for n in names
        },
    }


def undo_counters(matched: int) -> dict[str, Any]:
    """An undo chunk's counters before it runs."""
    return {
        "matched_items": matched,
        "restored": 0,
        "conflicts": 0,
        "conflict_samples": [],
        "sets_removed": 0,
        "reapplied_items": 0,
        "changes": 0,
    }


def counters_merge(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add one chunk's counters to the running totals (numbers add, samples append up to 50)."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int):
            out[key] = out.get(key, 0) + value
        elif isinstance(value, dict):
            out[key] = counters_merge(out.get(key, {}), value)
        elif isinstance(value, list):
            out[key] = [*out.get(key, []), *value][:50]
        else:
            out[key] = value
    return out
