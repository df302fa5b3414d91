"""Keyset cursors: signed, opaque, bound to one query (AST hash) and one order.

docs/query-language.md#paging
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing

from apps.search.query.errors import QueryError

SALT = "baggintag.search.cursor"
VERSION = 1


@dataclass(frozen=True)
class CursorState:
    """A page boundary: a row's sort value and id, the random seed, and the direction: forward
    (the next page starts after this row) or back (the previous page ends before it)."""

    query: str
    order: str
    value: Any
    last_id: int
    seed: int = 0
    back: bool = False


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _load(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("dt"), str):
        return datetime.fromisoformat(value["dt"])
    if value is None or isinstance(value, int | float):
        return value
    raise ValueError(value)


def cursor_encode(state: CursorState) -> str:
    """An opaque, URL-safe, signed token."""
    payload = {
        "v": VERSION,
        "q": state.query,
        "o": state.order,
        "last": [_dump(state.value), state.last_id],
        "seed": state.seed,
        "b": int(state.back),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def _mismatch(cursor: str, why: str) -> QueryError:
    return QueryError(
        "cursor_mismatch",
        f"This cursor {why}.",
        token=cursor[:40],
        position=0,
        length=0,
        hint="Start again from the first page (drop the cursor).",
    )


def cursor_decode(cursor: str, *, query: str, order: str) -> CursorState:
    """Check the signature and that the cursor belongs to this query and order."""
    try:
        payload = signing.loads(cursor, salt=SALT)
        last_value, last_id = payload["last"]
        state = CursorState(
            query=str(payload["q"]),
            order=str(payload["o"]),
            value=_load(last_value),
            last_id=int(last_id),
            seed=int(payload.get("seed", 0)),
            back=bool(payload.get("b", 0)),
        )
        if payload.get("v") != VERSION:
            raise ValueError("version")
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise _mismatch(cursor, "is not valid") from exc
    if state.query != query or state.order != order:
        raise _mismatch(cursor, "belongs to another query or order")
    return state
