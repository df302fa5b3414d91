"""Reads of tag sets."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.tags.models import TagAssignment, TagSet


def tag_set_list_for_item(*, media_item: Any) -> QuerySet[TagSet]:
    """An item's tag sets with their current tags (in position order) prefetched."""
    current = (
        TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
        .select_related("tag", "tag__type")
        .order_by("position", "tag__name")
    )
    return (
        TagSet.objects.filter(media_item=media_item)
        .select_related("vocabulary", "origin", "created_by")
        .prefetch_related(Prefetch("assignments", queryset=current, to_attr="current_assignments"))
        .order_by("kind", "id")
    )
