"""Query errors: parse and resolve failures (HTTP 400); the statement-time guard's QueryTimeout (HTTP 422,
`search.query_timeout`) lives in apps.core.db and is re-exported here."""

from __future__ import annotations

from typing import Any

from apps.core.db import QueryTimeout
from apps.core.exceptions import DomainError

# Codes are namespaced like every other error code (`search.unbalanced_parenthesis`); callers
# raise with the bare name (docs/query-language.md#errors).
NAMESPACE = "search."
BARE_CODES = frozenset(
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
CODES = frozenset(NAMESPACE + code for code in BARE_CODES)


class QueryError(DomainError):
    """A query that cannot run; `details` point at the token (character offsets) with a hint."""

    status_code = 400
    default_code = "search.unexpected_token"

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
        assert code in BARE_CODES, code
        details = {
            "token": token,
            "position": position,
            "length": len(token) if length is None else length,
            "hint": hint,
            **extra,
        }
        super().__init__(message, code=NAMESPACE + code, details=details)

    @property
    def position(self) -> int:
        """Where the offending token starts, in characters."""
        return int(self.details["position"])


__all__ = ["CODES", "QueryError", "QueryTimeout"]
