"""Reads for the dataset pages (docs/datasets.md#pages): the member gallery (narrowed by a
query, keyset paged newest first), the excluded items, and an item's datasets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.core.exceptions import DomainError, NotFoundError
from apps.datasets.models import Dataset, DatasetItem, Subset
from apps.datasets.selectors import dataset_members, subset_members
from apps.media.models import MediaItem
from apps.search.query import search_queryset

ITEM_PANEL_QUERY_CHECKS = 50  # datasets whose saved query the item page tests for the item


@dataclass
class GalleryPage:
    items: list[MediaItem]
    next_after: int | None


def gallery_page(
    *, owner: Dataset | Subset, q: str = "", viewer: Any = None, after: int | None = None, limit: int = 60
) -> GalleryPage:
    """Members (of the dataset or subset) matching `q`, newest first, ids below `after`.
    Raises QueryError for a query that does not parse."""
    if isinstance(owner, Subset):
        members = subset_members(subset=owner, viewer=viewer)
    else:
        members = dataset_members(dataset=owner, viewer=viewer)
    if q:
        members = members.filter(pk__in=search_queryset(q=q, viewer=viewer).values("pk"))
    if after:
        members = members.filter(pk__lt=after)
    rows = list(members.order_by("-pk")[: limit + 1])
    return GalleryPage(rows[:limit], rows[limit - 1].pk if len(rows) > limit else None)


def excluded_page(*, dataset: Dataset, after: int | None = None, limit: int = 60) -> GalleryPage:
    """Items explicitly excluded from the dataset, newest first."""
    ids = DatasetItem.objects.filter(dataset=dataset, excluded=True).values("media_item_id")
    items = MediaItem.objects.filter(pk__in=ids)
    if after:
        items = items.filter(pk__lt=after)
    rows = list(items.order_by("-pk")[: limit + 1])
    return GalleryPage(rows[:limit], rows[limit - 1].pk if len(rows) > limit else None)


def excluded_count(*, dataset: Dataset) -> int:
    return DatasetItem.objects.filter(dataset=dataset, excluded=True).count()


@dataclass
class Membership:
    dataset: Dataset
    state: str  # "explicit", "query" or "excluded"


@dataclass
class ItemPanel:
    memberships: list[Membership]
    unchecked: int  # datasets with a saved query past the probe limit, not tested for the item


def item_memberships(*, item: MediaItem, viewer: Any = None) -> ItemPanel:
    """The datasets that hold or exclude the item explicitly, and those whose saved query
    matches it. The work per view is bounded: at most ITEM_PANEL_QUERY_CHECKS saved queries are
    resolved and probed (one `exists` each, by name); how many more were left untested is
    counted (one COUNT over the datasets table) so the panel can say so."""
    rows = DatasetItem.objects.filter(media_item=item).select_related("dataset").order_by("dataset__name")
    out = [Membership(r.dataset, "excluded" if r.excluded else "explicit") for r in rows]
    seen = {m.dataset.pk for m in out}
    with_query = Dataset.objects.exclude(query="").exclude(pk__in=seen).order_by("name")
    checked = list(with_query[:ITEM_PANEL_QUERY_CHECKS])
    unchecked = with_query.count() - len(checked) if len(checked) == ITEM_PANEL_QUERY_CHECKS else 0
    for dataset in checked:
        try:
            matches = search_queryset(q=dataset.query, viewer=viewer).filter(pk=item.pk).exists()
        except DomainError:  # a saved query that no longer resolves matches nothing
            continue
        if matches:
            out.append(Membership(dataset, "query"))
    return ItemPanel(out, max(unchecked, 0))


def dataset_choices() -> QuerySet[Dataset]:
    return Dataset.objects.order_by("name").only("pk", "name", "slug")


def subset_by_slug(*, dataset: Dataset, slug: str) -> Subset:
    """A subset by its slug; a 404 naming the dataset (and the subset field) when it has none."""
    subset = Subset.objects.filter(dataset=dataset, slug=slug.lower()).first()
    if subset is None:
        message = f"Dataset {dataset.slug!r} has no subset {slug!r}."
        raise NotFoundError(
            message, code="datasets.subset_not_found", details={"fields": {"subset": [message]}}
        )
    return subset
