"""Query errors: parse and resolve failures (HTTP 400); the statement-time guard's QueryTimeout (HTTP 422)
lives in apps.core.db and is re-exported here."""

from __future__ import annotations

from typing import Any

from apps.core.db import QueryTimeout
from apps.core.exceptions import DomainError

CODES = frozenset(
    {
        "query_too_long",
        "unexpected_token",
        "unbalanced_parenthesis",
        "empty_group",
        "dangling_operator",
        "unknown_qualifier",
        "invalid_value",
        "singleton_repeated",
        "singleton_negated",
        "singleton_in_or",
        "order_requires",
        "too_many_terms",
        "nesting_too_deep",
        "wildcard_too_broad",
        "term_too_broad",
        "cursor_mismatch",
    }
)


class QueryError(DomainError):
    """A query that cannot run; `details` point at the token (character offsets) with a hint."""

    status_code = 400
    default_code = "unexpected_token"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        token: str,
        position: int,
        length: int | None = None,
        hint: str = "",
        **extra: Any,
    ) -> None:
        assert code in CODES, code
        details = {
            "token": token,
            "position": position,
            "length": len(token) if length is None else length,
            "hint": hint,
            **extra,
        }
        super().__init__(message, code=code, details=details)

    @property
    def position(self) -> int:
        """Where the offending token starts, in characters."""
        return int(self.details["position"])


__all__ = ["CODES", "QueryError", "QueryTimeout"]
