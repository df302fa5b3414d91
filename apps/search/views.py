"""The gallery for a tag query (registered with media as its query provider; the gallery without a
query is media's `item_list`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from apps.core.exceptions import DomainError
from apps.core.htmx import render_page
from apps.media import views as media_views
from apps.media.filters import MediaItemFilter
from apps.search.query.executor import search_media


def gallery_search(request: HttpRequest, filterset: MediaItemFilter, queryset: Any, q: str) -> HttpResponse:
    """The gallery for a tag query: cursor pages, warnings, and bad queries shown in place (422)."""
    cursor = request.GET.get("cursor") or None
    bind = "&".join(f"{k}={v}" for k, v in sorted(request.GET.lists()) if k not in ("q", "cursor", "after"))
    context: dict[str, Any] = {"filterset": filterset, "filtered": True, "first_page": not cursor, "q": q}
    try:
        page = search_media(
            q=q,
            viewer=request.user,
            cursor=cursor,
            limit=media_views.PAGE_SIZE,
            base=queryset,
            bind=bind,
            count="none" if cursor else "estimate",
        )
    except DomainError as err:
        position = int(err.details.get("position", 0) or 0)
        length = int(err.details.get("length", 0) or 0)
        context.update(
            items=[],
            next_query="",
            query_error={
                "message": err.message,
                "code": err.code,
                "hint": err.details.get("hint", ""),
                "position": position,
                "before": q[:position],
                "token": q[position : position + length],
                "after": q[position + length :],
            },
        )
        return render_page(
            request, "media/item_list.html", "media/partials/_search_gallery.html", context, status=422
        )
    query = request.GET.copy()
    for key in ("cursor", "after"):
        query.pop(key, None)
    if page.next_cursor:
        query["cursor"] = page.next_cursor
    context.update(
        items=page.items,
        next_query=query.urlencode() if page.next_cursor else "",
        query_warnings=page.warnings,
        result_count=page.count,
        count_exact=page.count_exact,
    )
    partial = "media/partials/_grid_page.html" if cursor else "media/partials/_search_gallery.html"
    return render_page(request, "media/item_list.html", partial, context)
