"""Reads of tag types, tag templates (vocabularies) and tags: defaults, lists, keyset pages."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from apps.core.exceptions import DomainError, NotFoundError
from apps.tags.models import Tag, TagType, Vocabulary


def _invalid(field_name: str, message: str) -> DomainError:
    return DomainError(message, code="tags.invalid", details={"fields": {field_name: [message]}})


def vocabulary_default() -> Vocabulary:
    """The default vocabulary (seeded by migration; recreated if someone deleted it)."""
    vocabulary = Vocabulary.objects.filter(is_default_key=True).first()
    if vocabulary is None:
        vocabulary, _ = Vocabulary.objects.get_or_create(
            slug="default", defaults={"name": "Default", "is_default_key": True}
        )
    return vocabulary


def tag_type_default() -> TagType:
    """The type given to tags nobody has typed yet ('general')."""
    tag_type = TagType.objects.filter(is_default_key=True).first()
    if tag_type is None:
        tag_type, _ = TagType.objects.get_or_create(
            key="general", defaults={"name": "General", "is_default_key": True}
        )
    return tag_type


def tag_type_get(*, type_id: int) -> TagType:
    """One tag type; NotFoundError otherwise."""
    tag_type = TagType.objects.filter(pk=type_id).first()
    if tag_type is None:
        raise NotFoundError(f"No tag type {type_id}.", code="tags.type_not_found", details={"id": type_id})
    return tag_type


def tag_type_list() -> QuerySet[TagType]:
    """Tag types in display order, each with how many tags use it."""
    return TagType.objects.annotate(tag_count=Count("tags")).order_by("display_order", "id")


def vocabulary_list() -> QuerySet[Vocabulary]:
    """Tag templates, the default first, with their default type."""
    return Vocabulary.objects.select_related("default_type").order_by("-is_default_key", "name", "id")


# --- the tag list (pages and API), keyset-paged --------------------------------------------------

TAG_ORDERS = {"count": "Most used", "name": "Name"}


@dataclass(frozen=True)
class TagPage:
    rows: list[Tag]
    next_cursor: str | None


def tag_list() -> QuerySet[Tag]:
    """Every tag with its vocabulary, type and (for alias antecedents) ideal tag; filter it
    with the TagFilter."""
    return Tag.objects.select_related("vocabulary", "type", "resolution__ideal_tag")


def _cursor_encode(order: str, tag: Tag) -> str:
    value: Any = tag.media_count if order == "count" else tag.name
    return base64.urlsafe_b64encode(json.dumps([order, value, tag.pk]).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, order: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        valid = kind == order and isinstance(pk, int) and isinstance(value, int if order == "count" else str)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise DomainError("This page link is no longer valid; start again.", code="tags.invalid_cursor")
    return value, pk


def tag_page(*, queryset: QuerySet[Tag], order: str = "count", cursor: str = "", size: int = 50) -> TagPage:
    """One page in `order` (count: most used first; name: A→Z), after `cursor`; no OFFSET, no COUNT."""
    if order not in TAG_ORDERS:
        raise _invalid("order", f"Order by one of: {', '.join(TAG_ORDERS)}.")
    if cursor:
        value, pk = _cursor_decode(cursor, order)
        if order == "count":
            queryset = queryset.filter(Q(media_count__lt=value) | Q(media_count=value, pk__gt=pk))
        else:
            queryset = queryset.filter(Q(name__gt=value) | Q(name=value, pk__gt=pk))
    ordering = ("-media_count", "pk") if order == "count" else ("name", "pk")
    rows = list(queryset.order_by(*ordering)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return TagPage(rows=rows, next_cursor=_cursor_encode(order, rows[-1]) if more and rows else None)


def tag_top(*, vocabulary: Vocabulary, tag_type: TagType | None = None, limit: int = 30) -> list[Tag]:
    """The most used tags of a vocabulary (optionally one type), for the frequency chart."""
    tags = Tag.objects.filter(vocabulary=vocabulary, media_count__gt=0)
    if tag_type is not None:
        tags = tags.filter(type=tag_type)
    return list(tags.select_related("type").order_by("-media_count", "pk")[:limit])


def tag_type_distribution(*, vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """Per type: how many tags and how many uses (sum of media counts) a vocabulary has."""
    rows = (
        Tag.objects.filter(vocabulary=vocabulary)
        .values("type_id")
        .annotate(tags=Count("pk"), uses=Sum("media_count"))
        .order_by()
    )
    types = {t.pk: t for t in TagType.objects.all()}
    out = [
        {"type": types[row["type_id"]], "tags": row["tags"], "uses": row["uses"] or 0}
        for row in rows
        if row["type_id"] in types
    ]
    out.sort(key=lambda row: (row["type"].display_order, row["type"].pk))
    return out


def vocabulary_get(*, vocabulary_id: int | None = None, slug: str | None = None) -> Vocabulary:
    """One vocabulary by id or slug; NotFoundError otherwise."""
    queryset = Vocabulary.objects.select_related("default_type")
    vocabulary = (
        queryset.filter(pk=vocabulary_id).first()
        if vocabulary_id is not None
        else queryset.filter(slug=slug).first()
    )
    if vocabulary is None:
        raise NotFoundError(
            f"No tag template {slug or vocabulary_id!r}.",
            code="tags.vocabulary_not_found",
            details={"vocabulary": slug or vocabulary_id},
        )
    return vocabulary


def tag_type_find_by_key(*, key: str) -> TagType | None:
    """A tag type by key or short key (case-insensitive), or None."""
    key = key.strip().casefold()
    for tag_type in TagType.objects.all():
        if tag_type.key == key or key in type_short_keys(tag_type):
            return tag_type
    return None


def type_short_keys(tag_type: TagType) -> set[str]:
    return {k.strip().casefold() for k in tag_type.short_keys.split(",") if k.strip()}


def tag_get(*, tag_id: int) -> Tag:
    """One tag with its vocabulary and type; NotFoundError otherwise."""
    tag = Tag.objects.select_related("vocabulary", "type", "resolution__ideal_tag").filter(pk=tag_id).first()
    if tag is None:
        raise NotFoundError(f"No tag {tag_id}.", code="tags.tag_not_found", details={"id": tag_id})
    return tag
