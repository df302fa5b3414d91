"""One FilterSet for the gallery page and the API (every filter is an indexed column)."""

from __future__ import annotations

import hashlib

import django_filters
from django import forms
from django.db.models import F, QuerySet

from apps.core.filters import IdFilter, IntegerFilter
from apps.core.ints import BIGINT_MAX
from apps.core.lookups import FoldedEquals
from apps.media import selectors
from apps.media.formats import MIME_TYPES
from apps.media.models import MediaItem


class MediaItemFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(field_name="kind", choices=MediaItem.Kind.choices, empty_label="Any")
    format = django_filters.MultipleChoiceFilter(
        field_name="format",
        choices=[(f, f) for f in MIME_TYPES],
        label="Format",
        widget=forms.CheckboxSelectMultiple,
    )
    # Integers are range-checked (apps/core/ints.py): a value past the column is a 400, not a 500.
    width_min = IntegerFilter(field_name="width", lookup_expr="gte", label="Min width")
    width_max = IntegerFilter(field_name="width", lookup_expr="lte", label="Max width")
    height_min = IntegerFilter(field_name="height", lookup_expr="gte", label="Min height")
    height_max = IntegerFilter(field_name="height", lookup_expr="lte", label="Max height")
    size_min = IntegerFilter(
        field_name="size_bytes", lookup_expr="gte", label="Min bytes", max_value=BIGINT_MAX
    )
    size_max = IntegerFilter(
        field_name="size_bytes", lookup_expr="lte", label="Max bytes", max_value=BIGINT_MAX
    )
    source = django_filters.CharFilter(method="filter_source", label="Source URL (exact)")
    site = django_filters.CharFilter(method="filter_site", label="Source host (and its subdomains)")
    artist = django_filters.CharFilter(method="filter_artist", label="Artist")
    parent = IdFilter(field_name="parent_id", lookup_expr="exact", label="Derived from item")
    video = IdFilter(field_name="video_id", lookup_expr="exact", label="Frames of video")
    added_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    added_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = MediaItem
        fields: list[str] = []

    def filter_site(self, queryset: QuerySet[MediaItem], name: str, value: str) -> QuerySet[MediaItem]:
        return selectors.media_items_from_sites(queryset, hosts=[value])

    def filter_artist(self, queryset: QuerySet[MediaItem], name: str, value: str) -> QuerySet[MediaItem]:
        """Case-insensitive, `_` the same as a space (docs/query-language.md#qualifiers)."""
        return queryset.filter(FoldedEquals(F("artist"), value))

    def filter_source(self, queryset: QuerySet[MediaItem], name: str, value: str) -> QuerySet[MediaItem]:
        digest = hashlib.sha256(value.strip().encode()).hexdigest()
        return queryset.filter(source_hash=digest)
