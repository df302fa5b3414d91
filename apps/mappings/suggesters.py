"""Where mapping suggestions come from (docs/mappings.md#suggestions): an extension point.

A suggester is a callable `(sources, target_vocabulary_id, limit) -> {source tag id: [Candidate]}`
over a batch of unmapped source tags. The mappings app registers its own (same name, alias,
close spelling, co-occurrence) in `services/suggestions.py`; a higher app (the taggers app, for
embedding similarity) registers more in its `AppConfig.ready()` with `suggester_register`. The
service merges every suggester's candidates per source tag, keeping each target's best score and
all the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.mappings.pipeline import TagInfo


@dataclass
class Candidate:
    """A proposed target with a score in 0..1 and the evidence that supports it."""

    target_id: int
    score: float
    evidence: list[dict[str, Any]] = field(default_factory=list)


Suggester = Callable[[Sequence[TagInfo], int, int], dict[int, list[Candidate]]]
_suggesters: dict[str, Suggester] = {}


def suggester_register(*, key: str, suggester: Suggester) -> None:
    """Add (or replace) a suggester under `key` (e.g. "taggers.embeddings")."""
    _suggesters[key] = suggester


def suggesters() -> dict[str, Suggester]:
    return dict(_suggesters)
