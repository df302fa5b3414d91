"""Reads of media items."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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
