"""The query language's public interface (docs/query-language.md); DRF-free.

    page = search_media(q="(saber_(fate) or rin) -1boy width:>=1024", viewer=user)
    page.items, page.next_cursor, page.warnings

Errors are `QueryError` (HTTP 400; code, message, details {token, position, length, hint})
and `QueryTimeout` (HTTP 422, code query_timeout).
"""

from apps.core.db import QueryTimeout, statement_limit
from apps.search.query.cursor import CursorState, cursor_decode, cursor_encode
from apps.search.query.errors import CODES, QueryError
from apps.search.query.executor import SearchPage, search_ids, search_media, search_queryset
from apps.search.query.nodes import And, Node, Not, Or, Qualifier, TagTerm, ast_hash, canonical
from apps.search.query.parser import parse
from apps.search.query.resolve import Resolved, query_resolve

__all__ = [
    "CODES",
    "And",
    "CursorState",
    "Node",
    "Not",
    "Or",
    "Qualifier",
    "QueryError",
    "QueryTimeout",
    "Resolved",
    "SearchPage",
    "TagTerm",
    "ast_hash",
    "canonical",
    "cursor_decode",
    "cursor_encode",
    "parse",
    "query_resolve",
    "search_ids",
    "search_media",
    "search_queryset",
    "statement_limit",
]
