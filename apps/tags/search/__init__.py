"""The tag query language and its executor (docs/query-language.md); DRF-free.

    page = search_media(q="(saber_(fate) or rin) -1boy width:>=1024", viewer=user)
    page.items, page.next_cursor, page.warnings

Errors are `QueryError` (HTTP 400; code, message, details {token, position, length, hint})
and `QueryTimeout` (HTTP 422, code query_timeout).
"""

from apps.tags.search.cursor import CursorState, cursor_decode, cursor_encode
from apps.tags.search.errors import CODES, QueryError, QueryTimeout
from apps.tags.search.executor import SearchPage, search_ids, search_media
from apps.tags.search.guard import statement_limit
from apps.tags.search.nodes import And, Node, Not, Or, Qualifier, TagTerm, ast_hash, canonical
from apps.tags.search.parser import parse
from apps.tags.search.resolve import Resolved, query_resolve

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
    "statement_limit",
]
