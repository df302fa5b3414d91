"""Reads of media items."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.core.exceptions import NotFoundError
from apps.media.models import MediaItem, VideoFrame


def media_item_list(*, viewer: Any) -> QuerySet[MediaItem]:
    """Items the viewer may see (the library is shared by all signed-in users)."""
    return MediaItem.objects.all()


def media_item_get(*, item_id: Any, viewer: Any) -> MediaItem:
    """One item or NotFoundError."""
    try:
        return (
            media_item_list(viewer=viewer).select_related("parent", "video", "added_by").get(pk=int(item_id))
        )
    except (MediaItem.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Media item {item_id} not found.", code="media.not_found") from exc


def media_item_sources(*, item: MediaItem) -> QuerySet[Any]:
    return item.sources.order_by("id")


def video_frame_list(*, video: MediaItem) -> QuerySet[Any]:
    """A video's captures in time order, with their frame items."""
    return VideoFrame.objects.filter(video=video).select_related("media_item")


def media_item_children(*, item: MediaItem, limit: int = 48) -> list[MediaItem]:
    """Items made from this one (transform results), newest first."""
    return list(MediaItem.objects.filter(parent=item).order_by("-id")[:limit])


def site_host_clean(value: str) -> str:
    """A typed host as stored: lower case, no scheme, path, port or trailing dot."""
    host = value.strip().lower()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].split(":", 1)[0]
    return host.strip(".")


def media_sites_matching(*, hosts: list[str]) -> list[str]:
    """The stored source hosts that are one of `hosts` or a subdomain of one: `pixiv.net` →
    pixiv.net, www.pixiv.net, i.pixiv.net (docs/query-language.md#qualifiers).

    One DISTINCT read over the (site, id) index (MariaDB answers it with a loose index scan,
    one probe per distinct host), so the item filter is an indexed `site IN (…)`.
    """
    wanted = [h for h in (site_host_clean(v) for v in hosts) if h]
    if not wanted:
        return []
    match = Q()
    for host in wanted:
        match |= Q(site=host) | Q(site__endswith=f".{host}")
    found = MediaItem.objects.filter(match).order_by("site").values_list("site", flat=True).distinct()
    return sorted(set(found))


def media_items_from_sites(queryset: QuerySet[MediaItem], *, hosts: list[str]) -> QuerySet[MediaItem]:
    """Items whose source host is one of `hosts` or a subdomain of one."""
    sites = media_sites_matching(hosts=hosts)
    return queryset.filter(site__in=sites) if sites else queryset.none()
