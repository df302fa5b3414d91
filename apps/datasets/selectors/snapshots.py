"""Reads of snapshots: the list, one snapshot, its members and the diff of two
(docs/datasets.md#snapshots). Every read is set-based SQL over SnapshotItem's
(snapshot, part, item_id) index."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from apps.core.exceptions import DomainError, NotFoundError
from apps.datasets.models import Dataset, Snapshot, SnapshotItem, SnapshotPart

DIFF_KINDS = ("added", "removed", "retagged")


def snapshot_list(*, dataset: Dataset) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(dataset=dataset).select_related("created_by").order_by("-number")


def snapshot_get(*, dataset: Dataset, snapshot_id: Any) -> Snapshot:
    try:
        return snapshot_list(dataset=dataset).get(pk=int(snapshot_id))
    except (Snapshot.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(
            f"Snapshot {snapshot_id} of dataset {dataset.pk} not found.", code="datasets.snapshot_not_found"
        ) from exc


def snapshot_parts(*, snapshot: Snapshot) -> list[SnapshotPart]:
    return list(SnapshotPart.objects.filter(snapshot=snapshot).order_by("position"))


def _part_number(snapshot: Snapshot, subset: str) -> int | None:
    """0 for the dataset (`subset` empty), else the position of the part with that slug (None:
    the snapshot has no such subset)."""
    if not subset:
        return 0
    return (
        SnapshotPart.objects.filter(snapshot=snapshot, slug=subset).values_list("position", flat=True).first()
    )


def snapshot_rows(*, snapshot: Snapshot, subset: str = "") -> QuerySet[SnapshotItem]:
    """The frozen members of the dataset (or of the subset with slug `subset`): a 404 when the
    snapshot has no such subset."""
    part = _part_number(snapshot, subset)
    if part is None:
        raise NotFoundError(
            f"Snapshot {snapshot.pk} has no subset {subset!r}.", code="datasets.subset_not_found"
        )
    return SnapshotItem.objects.filter(snapshot=snapshot, part=part)


def _rows_or_none(snapshot: Snapshot, subset: str) -> QuerySet[SnapshotItem]:
    part = _part_number(snapshot, subset)
    rows = SnapshotItem.objects.filter(snapshot=snapshot, part=part or 0)
    return rows if part is not None else rows.none()


def snapshot_diff_sets(*, a: Snapshot, b: Snapshot, subset: str = "") -> dict[str, QuerySet[SnapshotItem]]:
    """From `a` to `b`: rows of b not in a (added), rows of a not in b (removed), rows of b whose
    item is in a with another tag fingerprint (retagged). Each is one anti- or semi-join. A subset
    one snapshot lacks counts as empty there; one that neither has is a 404."""
    if subset and _part_number(a, subset) is None and _part_number(b, subset) is None:
        raise NotFoundError(f"Neither snapshot has a subset {subset!r}.", code="datasets.subset_not_found")
    old, new = _rows_or_none(a, subset), _rows_or_none(b, subset)
    changed = old.filter(item_id=OuterRef("item_id")).exclude(tags_hash=OuterRef("tags_hash"))
    return {
        "added": new.exclude(item_id__in=old.values("item_id")),
        "removed": old.exclude(item_id__in=new.values("item_id")),
        "retagged": new.filter(Exists(changed)),
    }


def snapshot_diff(
    *, a: Snapshot, b: Snapshot, subset: str = "", after: int = 0, limit: int = 100
) -> dict[str, Any]:
    """Counts and one keyset page (item ids above `after`) of added, removed and retagged."""
    if a.dataset_id != b.dataset_id:
        raise DomainError("Both snapshots must be of the same dataset.", code="datasets.bad_diff")
    out: dict[str, Any] = {"from_snapshot": a.pk, "to_snapshot": b.pk, "subset": subset or None}
    for kind, rows in snapshot_diff_sets(a=a, b=b, subset=subset).items():
        page = list(
            rows.filter(item_id__gt=after)
            .order_by("item_id")
            .values("item_id", "sha256", "tag_count")[: limit + 1]
        )
        out[kind] = {
            "count": rows.count(),
            "items": [
                {"id": r["item_id"], "sha256": r["sha256"], "tag_count": r["tag_count"]} for r in page[:limit]
            ],
            "next_after": page[limit - 1]["item_id"] if len(page) > limit else None,
        }
    return out


def snapshot_members_page(
    *, snapshot: Snapshot, subset: str = "", after: int = 0, limit: int = 100
) -> tuple[list[SnapshotItem], int | None]:
    """One keyset page of frozen members in item id order, and the next `after`."""
    rows = snapshot_rows(snapshot=snapshot, subset=subset)
    page = list(rows.filter(item_id__gt=after).order_by("item_id")[: limit + 1])
    return page[:limit], page[limit - 1].item_id if len(page) > limit else None
