"""Reads of media items."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.lookups import LessThanOrEqual

from apps.core.db import QueryTimeout, statement_limit
from apps.core.exceptions import NotFoundError
from apps.core.lookups import Hamming
from apps.media.models import MediaItem, VideoFrame
from apps.media.phash import phash_bands


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


COUNT_TIME_LIMIT = 0.05  # seconds a library count may take before it becomes an estimate


def media_item_count(
    queryset: QuerySet[MediaItem], *, shown: int, more: bool, filtered: bool
) -> tuple[int | None, bool]:
    """(count, exact) for the library's first page: the page itself when it holds everything, else
    COUNT(*) under 50 ms; past that, the highest id as an estimate of an unfiltered library, or
    None (docs/query-language.md#counts does the same for queries)."""
    if not more:
        return shown, True
    try:
        with statement_limit(COUNT_TIME_LIMIT):
            return queryset.order_by().count(), True
    except QueryTimeout:
        if filtered:
            return None, False
        return MediaItem.objects.order_by("-pk").values_list("pk", flat=True).first(), False


def video_frame_item_count(*, video: MediaItem) -> int:
    """How many frame items were captured from this video (they outlive it, unlinked)."""
    return MediaItem.objects.filter(video=video).count()


def media_item_videos_summary(*, ids: list[int]) -> dict[str, int]:
    """How many of these items are videos, and how many frames were captured from those videos."""
    videos = MediaItem.objects.filter(pk__in=ids, kind=MediaItem.Kind.VIDEO)
    return {
        "videos": videos.count(),
        "frames": MediaItem.objects.filter(video__in=videos).exclude(pk__in=ids).count(),
    }


SIMILAR_DISTANCE = 4  # what the item page's "Find similar" link searches (similar:<id>,4)


def media_item_similar_count(*, item: MediaItem, limit: int = 99) -> int:
    """How many other items are near-duplicates of this one (at most limit + 1): five indexed band
    probes, then the Hamming distance (docs/query-language.md#near-duplicates)."""
    if item.phash is None:
        return 0
    match = Q()
    for n, band in enumerate(phash_bands(item.phash & ((1 << 64) - 1))):
        match |= Q(**{f"phash_b{n}": band})
    close = LessThanOrEqual(Hamming(F("phash"), Value(item.phash)), SIMILAR_DISTANCE)
    rows = MediaItem.objects.filter(match).filter(close).exclude(pk=item.pk)
    return len(rows.values_list("pk", flat=True)[: limit + 1])
