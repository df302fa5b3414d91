"""Query errors: parse and resolve failures (HTTP 400) and the statement-time guard (HTTP 422)."""

from __future__ import annotations

from typing import Any

from apps.core.exceptions import DomainError, UnprocessableError

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


class QueryTimeout(UnprocessableError):
    """The statement-time guard stopped a search (HTTP 422)."""

    default_code = "query_timeout"

    def __init__(self, *, limit_s: float, term: str = "") -> None:
        costly = f" The costliest term was {term!r}." if term else ""
        super().__init__(
            f"The search took longer than {limit_s:g} s and was stopped.{costly} "
            "Add a rarer tag or a qualifier to narrow it.",
            code="query_timeout",
            details={"limit_s": limit_s, "term": term},
        )
