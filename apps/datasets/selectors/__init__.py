"""Reads: datasets, members (keyset paged) and the validation report (docs/datasets.md).

Membership is one SQL condition on MediaItem (explicit ∪ saved query − exclusions), so every
read below is set-based: nothing walks the members in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least

from apps.core.exceptions import NotFoundError
from apps.core.lookups import Hamming
from apps.datasets.models import Dataset, DatasetItem, Requirements, Subset, SubsetItem
from apps.media.models import MediaItem
from apps.search.query import search_queryset
from apps.tags.models import ItemTagType, TagType

PHASH_BANDS = ("phash_b0", "phash_b1", "phash_b2", "phash_b3", "phash_b4")


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.select_related("requirements").order_by("-id")


def dataset_search(*, search: str) -> QuerySet[Dataset]:
    """Datasets whose name or slug contains `search`, newest first."""
    return dataset_list().filter(Q(name__icontains=search) | Q(slug__icontains=search))


def dataset_get(*, dataset_id: Any) -> Dataset:
    try:
        return dataset_list().get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Dataset {dataset_id} not found.", code="datasets.not_found") from exc


def subset_list(*, dataset: Dataset, order: str = "name") -> QuerySet[Subset]:
    """A dataset's subsets, by name (pages) or newest first (`order="-id"`, the API)."""
    return Subset.objects.filter(dataset=dataset).order_by(order)


def subset_get(*, dataset: Dataset, subset_id: Any) -> Subset:
    try:
        return Subset.objects.get(dataset=dataset, pk=int(subset_id))
    except (Subset.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(
            f"Subset {subset_id} of dataset {dataset.pk} not found.", code="datasets.subset_not_found"
        ) from exc


def _membership(rows: QuerySet[Any], query: str, viewer: Any) -> QuerySet[MediaItem]:
    included = rows.filter(excluded=False).values("media_item_id")
    excluded = rows.filter(excluded=True).values("media_item_id")
    condition = Q(pk__in=included)
    if query:
        condition |= Q(pk__in=search_queryset(q=query, viewer=viewer).values("pk"))
    return MediaItem.objects.filter(condition).exclude(pk__in=excluded)


def dataset_members(*, dataset: Dataset, viewer: Any = None) -> QuerySet[MediaItem]:
    """The members as an unordered queryset (explicit ∪ saved query − exclusions)."""
    return _membership(DatasetItem.objects.filter(dataset=dataset), dataset.query, viewer)


def subset_members(*, subset: Subset, viewer: Any = None) -> QuerySet[MediaItem]:
    return _membership(SubsetItem.objects.filter(subset=subset), subset.query, viewer)


@dataclass
class MembersPage:
    items: list[MediaItem]
    next_after: int | None


def members_page(*, members: QuerySet[MediaItem], after: int = 0, limit: int = 50) -> MembersPage:
    """One keyset page in id order: ids above `after`, `limit` of them (one extra says more)."""
    rows = list(members.filter(pk__gt=after).order_by("pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return MembersPage(items=rows, next_after=rows[-1].pk if more and rows else None)


@dataclass
class Check:
    """One requirement as SQL: `fails` selects failing items; `value` is the measured value."""

    code: str
    requirement: Any
    fails: Q
    value: str
    annotation: Any = None


def _range_checks(req: Requirements) -> list[Check]:
    out: list[Check] = []
    bounds = [
        ("exact_width", "width", "ne"),
        ("exact_height", "height", "ne"),
        ("min_width", "width", "lt"),
        ("max_width", "width", "gt"),
        ("min_height", "height", "lt"),
        ("max_height", "height", "gt"),
        ("min_short_side", "_short_side", "lt"),
        ("min_aspect_milli", "ratio_milli", "lt"),
        ("max_aspect_milli", "ratio_milli", "gt"),
        ("min_pixels", "pixels", "lt"),
        ("max_pixels", "pixels", "gt"),
        ("max_file_size", "size_bytes", "gt"),
        ("min_tag_count", "tag_count", "lt"),
    ]
    for field, column, op in bounds:
        limit = getattr(req, field)
        if limit is None:
            continue
        if column == "_short_side":
            fails = Q(width__lt=limit) | Q(height__lt=limit)
        elif op == "ne":
            fails = ~Q(**{column: limit})
        else:
            fails = Q(**{f"{column}__{op}": limit})
        annotation = Least("width", "height") if column == "_short_side" else None
        out.append(Check(field, limit, fails, column, annotation))
    if req.bit_depth is not None:
        out.append(Check("bit_depth", req.bit_depth, ~Q(bit_depth=req.bit_depth), "bit_depth"))
    return out


def _near_duplicates(distance: int, members: QuerySet[MediaItem], band: str) -> QuerySet[MediaItem]:
    """Other members sharing the outer item's `band` and within `distance` bits of it."""
    return (
        members.filter(**{band: OuterRef(band)}, phash__isnull=False)
        .exclude(pk=OuterRef("pk"))
        .annotate(_d=Hamming(F("phash"), OuterRef("phash")))
        .filter(_d__lte=distance)
    )


def _near_duplicate_check(distance: int, members: QuerySet[MediaItem]) -> Check:
    """Five 13-bit bands: two hashes within 4 bits share a band (pigeonhole). One probe per
    band, each an equality on that band's index, rather than one OR over all five (which
    MariaDB answers with a scan per member). The value: the lowest-id near duplicate in the
    first band that has one."""
    per_band = [_near_duplicates(distance, members, band) for band in PHASH_BANDS]
    fails = Q()
    for others in per_band:
        fails |= Q(Exists(others.values("pk")))
    nearest = Coalesce(*(Subquery(others.order_by("pk").values("pk")[:1]) for others in per_band))
    return Check("near_duplicate", distance, Q(phash__isnull=False) & fails, "_near", nearest)


def requirement_checks(*, dataset: Dataset, members: QuerySet[MediaItem]) -> list[Check]:
    """Every set rule of the dataset's requirements as a Check (none without requirements)."""
    req = Requirements.objects.filter(dataset=dataset).first()
    if req is None:
        return []
    out = _range_checks(req)
    if req.formats:
        out.append(Check("formats", req.formats, ~Q(format__in=req.formats), "format"))
    if req.modes:
        out.append(Check("modes", req.modes, ~Q(mode__in=req.modes), "mode"))
    if req.alpha == Requirements.Alpha.REQUIRED:
        out.append(Check("alpha", "required", Q(has_alpha=False), "has_alpha"))
    elif req.alpha == Requirements.Alpha.FORBIDDEN:
        out.append(Check("alpha", "forbidden", Q(has_alpha=True), "has_alpha"))
    for tag_type in req.required_tag_types.order_by("key"):
        # The items with a tag of this type: one range of ItemTagType's primary key (type, item),
        # not a join of every member's effective tags with their tags (docs/tags.md).
        typed = ItemTagType.objects.filter(tag_type=tag_type).values("media_item_id")
        out.append(Check(f"tag_type:{tag_type.key}", tag_type.key, ~Q(pk__in=typed), "tag_count"))
    if req.near_duplicate_max_distance is not None:
        out.append(_near_duplicate_check(req.near_duplicate_max_distance, members))
    return out


def _annotated(members: QuerySet[MediaItem], check: Check) -> QuerySet[MediaItem]:
    rows = members.filter(check.fails)
    if check.annotation is not None:
        rows = rows.annotate(**{check.value: check.annotation})
    return rows


def _tally(members: QuerySet[MediaItem], checks: list[Check]) -> tuple[int, int, list[int]]:
    """Members, distinct failing members and the failing count of every check from ONE pass:
    each member's failures as a bit mask (bit i: check i fails), grouped by mask. The groups
    are the combinations of failures that occur (a few dozen), summed here, never the members."""
    mask: Any = Value(0)
    for i, check in enumerate(checks):
        mask = mask + Case(When(check.fails, then=Value(1 << i)), default=Value(0))
    rows = members.order_by().annotate(_mask=ExpressionWrapper(mask, output_field=BigIntegerField()))
    total = failing = 0
    counts = [0] * len(checks)
    for row_mask, n in rows.values_list("_mask").annotate(n=Count("pk")):
        total += n
        if row_mask:
            failing += n
            for i in range(len(checks)):
                if row_mask >> i & 1:
                    counts[i] += n
    return total, failing, counts


def validation_report(
    *, dataset: Dataset, viewer: Any = None, after: int = 0, limit: int = 100
) -> dict[str, Any]:
    """Per requirement: its limit, how many members fail, and up to `limit` failing items (ids
    above `after`) with the measured value; plus the member count and the distinct failing
    count. The counts come from one pass over the members (`_tally`); then one keyset read per
    requirement that has failures. No per-item Python."""
    members = dataset_members(dataset=dataset, viewer=viewer)
    checks = requirement_checks(dataset=dataset, members=members)
    if not checks:
        return {"dataset": dataset.pk, "members": members.count(), "failing": 0, "requirements": []}
    total, failing, counts = _tally(members, checks)
    report: list[dict[str, Any]] = []
    for check, count in zip(checks, counts, strict=True):
        page: list[tuple[int, Any]] = []
        if count:
            failing_rows = _annotated(members, check).filter(pk__gt=after).order_by("pk")
            page = list(failing_rows.values_list("pk", check.value)[: limit + 1])
        report.append(
            {
                "requirement": check.code,
                "limit": check.requirement,
                "count": count,
                "items": [{"id": pk, "value": value} for pk, value in page[:limit]],
                "next_after": page[limit - 1][0] if len(page) > limit else None,
            }
        )
    return {"dataset": dataset.pk, "members": total, "failing": failing, "requirements": report}


def tag_types_by_key(keys: list[str]) -> dict[str, TagType]:
    return {t.key: t for t in TagType.objects.filter(key__in=keys)}
