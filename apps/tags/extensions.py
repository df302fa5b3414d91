"""Extension points the tags app offers the apps above it (docs/architecture.md#extension-points).

Tags may not import the apps built on it (mappings, taggers, …), yet its undo machinery must be
able to *redo* their operations: undoing the undo of an operation that created tag sets re-applies
it where the undo had dropped them. An app that writes its own kind of `Operation` registers a
redo handler for that kind in its `AppConfig.ready()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

# handler(*, root, operation_id, item_ids, actor_id) -> rows changed: re-apply `root` to these
# items inside the caller's transaction, logging under `operation_id`.
RedoHandler = Callable[..., int]

_redo_handlers: dict[str, RedoHandler] = {}


def redo_handler_register(*, kind: str, handler: RedoHandler) -> None:
    """Register how operations of `kind` are applied again on redo (one handler per kind)."""
    existing = _redo_handlers.get(kind)
    if existing is not None and existing is not handler:
        raise RuntimeError(f"A redo handler for operation kind {kind!r} is registered already.")
    _redo_handlers[kind] = handler


def redo_handler(kind: str) -> RedoHandler | None:
    return _redo_handlers.get(kind)


# --- tag suggesters ---------------------------------------------------------------------------
# Mapping suggestions (docs/mappings.md#suggestions) come from suggesters that apps register
# here, below both the mappings app that asks and the apps that answer (the taggers app, a
# sibling of mappings, registers embedding similarity): a suggester is a callable
# `(sources, target_vocabulary_id, limit) -> {source tag id: [Candidate]}` over a batch of
# source tags (objects with `.id` and `.name`).


@dataclass
class Candidate:
    """A proposed target tag with a score in 0..1 and the evidence that supports it."""

    target_id: int
    score: float
    evidence: list[dict[str, Any]] = field(default_factory=list)


Suggester = Callable[[Sequence[Any], int, int], dict[int, list[Candidate]]]
_suggesters: dict[str, Suggester] = {}


def suggester_register(*, key: str, suggester: Suggester) -> None:
    """Add (or replace) a suggester under `key` (e.g. "taggers.embeddings")."""
    _suggesters[key] = suggester


def suggesters() -> dict[str, Suggester]:
    return dict(_suggesters)


# --- curated label listeners ------------------------------------------------------------------
# Apps above tags learn how many curated labels changed (docs/taggers.md#debounced-retraining:
# the taggers app counts them per head tagger). The one writer's settle step calls
# `curated_changed` with {tag id: transitions}; each listener runs after the transaction commits
# (never for a rolled-back write) and must be cheap: it sees only the changed tags.

CuratedListener = Callable[[dict[int, int]], object]
_curated_listeners: dict[str, CuratedListener] = {}


def curated_listener_register(*, key: str, listener: CuratedListener) -> None:
    """Add (or replace) a listener under `key` (e.g. "taggers.retrain")."""
    _curated_listeners[key] = listener


def curated_changed(counts: dict[int, int]) -> None:
    """Hand {tag id: curated transitions} to every listener once the transaction commits."""
    if not counts or not _curated_listeners:
        return
    from django.db import transaction

    for key, listener in list(_curated_listeners.items()):
        transaction.on_commit(partial(_notify, key, listener, dict(counts)))


def _notify(key: str, listener: CuratedListener, counts: dict[int, int]) -> None:
    """A listener's failure is logged, never raised into the write that committed already."""
    try:
        listener(counts)
    except Exception:
        logging.getLogger(__name__).exception("curated listener %s failed", key)
