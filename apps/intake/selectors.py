"""Reads for the intake queue: entries, one entry, progress per dataset (docs/intake.md#progress)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from apps.core.exceptions import NotFoundError
from apps.intake.models import IntakeEntry, percent

State = IntakeEntry.State


def _entries() -> QuerySet[IntakeEntry]:
    return IntakeEntry.objects.select_related("dataset", "subset", "job").order_by("-id")


def entry_list(*, dataset_id: int | None = None, state: str = "") -> QuerySet[IntakeEntry]:
    """Entries, newest first, with what the queue shows beside them (not their URL lists, which
    may hold thousands of URLs: `entry_get` reads those)."""
    entries = _entries().defer("urls")
    if dataset_id is not None:
        entries = entries.filter(dataset_id=dataset_id)
    if state:
        entries = entries.filter(state=state)
    return entries


def entry_get(*, entry_id: Any) -> IntakeEntry:
    try:
        return _entries().get(pk=int(entry_id))
    except (IntakeEntry.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Intake entry {entry_id} not found.", code="intake.not_found") from exc


def entries_page(
    *, entries: QuerySet[IntakeEntry], before: int = 0, limit: int = 50
) -> tuple[list[IntakeEntry], int | None]:
    """One keyset page, newest first: (rows, the `before` of the next page or None)."""
    if before:
        entries = entries.filter(pk__lt=before)
    rows = list(entries[: limit + 1])
    return rows[:limit], rows[limit - 1].pk if len(rows) > limit else None


def dataset_progress(*, dataset_id: int | None = None) -> list[dict[str, Any]]:
    """Per target dataset: entries, planned vs added vs reviewed (with percents), failures and
    entries still fetching; one grouped query over the entries (never over items)."""
    entries = IntakeEntry.objects.all()
    if dataset_id is not None:
        entries = entries.filter(dataset_id=dataset_id)
    rows = (
        entries.values("dataset_id", "dataset__name")
        .annotate(
            entries=Count("pk"),
            planned=Coalesce(Sum("planned_count"), 0),
            added=Coalesce(Sum("added_count"), 0),
            reviewed=Coalesce(Sum("reviewed_count"), 0),
            failed_inputs=Coalesce(Sum("failed_count"), 0),
            failed=Count("pk", filter=Q(state=State.FAILED)),
            fetching=Count("pk", filter=Q(state=State.FETCHING)),
        )
        .order_by("dataset__name", "dataset_id")
    )
    return [
        {
            "dataset": row["dataset_id"],
            "dataset_name": row["dataset__name"],
            "entries": row["entries"],
            "planned": row["planned"],
            "added": row["added"],
            "reviewed": row["reviewed"],
            "failed_inputs": row["failed_inputs"],
            "failed_entries": row["failed"],
            "fetching": row["fetching"],
            "added_percent": percent(row["added"], row["planned"]),
            "reviewed_percent": percent(row["reviewed"], row["planned"] or row["added"]),
        }
        for row in rows
    ]


def arrival_ids(*, entry: IntakeEntry, reviewed: bool | None = None, limit: int = 1000) -> list[int]:
    """Item ids that arrived for the entry (first `limit`, by id)."""
    rows = entry.arrivals.all()
    if reviewed is not None:
        rows = rows.filter(reviewed=reviewed)
    return list(rows.order_by("media_item_id").values_list("media_item_id", flat=True)[:limit])
