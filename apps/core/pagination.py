"""Keyset pagination: cursor on the primary key, no COUNT(*), stable under inserts."""

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest first by id; `page_size` may be asked for up to 200."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200
