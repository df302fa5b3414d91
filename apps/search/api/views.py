"""The query language over HTTP: `GET /api/media/?q=` and `/api/media/search` (registered with media
as its query provider; docs/api.md#search)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.media.api.serializers import MediaItemOutputSerializer
from apps.search.query.executor import search_media

SEARCH_PARAMS = ("q", "cursor", "limit", "page_size", "count")


def search_response(request: Request, queryset: Any) -> Response:
    """Answer `q=` with the query language (keyset page, warnings, count) over filtered items."""
    params = request.query_params
    field = "limit" if params.get("limit") else "page_size"
    limit = int_param(params.get(field), field=field, minimum=1)
    count = params.get("count", "estimate")
    if count not in ("none", "estimate", "exact"):
        raise DomainError(
            "count must be none, estimate or exact.",
            code="invalid",
            details={"fields": {"count": ["One of none, estimate, exact."]}},
        )
    bind = "&".join(f"{k}={v}" for k, v in sorted(params.lists()) if k not in SEARCH_PARAMS)
    page = search_media(
        q=params.get("q", ""),
        viewer=request.user,
        cursor=params.get("cursor") or None,
        limit=limit,
        base=queryset,
        bind=bind,
        count=count,
    )
    return Response(
        {
            "results": MediaItemOutputSerializer(page.items, many=True, context={"request": request}).data,
            "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor,
            "count": page.count,
            "count_exact": page.count_exact,
            "count_upper_bound": page.count_upper_bound,
            "warnings": page.warnings,
        }
    )
