"""Reads of bulk tag operations: the history list, one operation, the items it changed."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.core.exceptions import NotFoundError
from apps.tags.models import Operation, OperationChange, OperationSet, OperationTarget


def effective_pending_exists() -> bool:
    """Whether a bulk job's effective tags are still being settled (search warns meanwhile;
    docs/tags.md#deferred-effective-refresh)."""
    return Operation.objects.filter(effective_pending=True).exists()


def operation_list(*, viewer: Any) -> QuerySet[Operation]:
    """Logged operations, newest first (the library is shared, so everyone sees all of them)."""
    return Operation.objects.select_related("created_by", "job", "undo_of", "undone_by").order_by("-id")


def operation_get(*, operation_id: Any, viewer: Any) -> Operation:
    """One operation or NotFoundError."""
    try:
        return operation_list(viewer=viewer).get(pk=int(operation_id))
    except (Operation.DoesNotExist, TypeError, ValueError) as exc:
        raise NotFoundError(f"Operation {operation_id} not found.", code="tags.operation_not_found") from exc


def operation_item_ids(*, operation: Operation, after: int = 0, limit: int = 100) -> list[int]:
    """Items an operation changed (or, for a preview, targets), ascending id after `after`."""
    if operation.status in (Operation.Status.PREVIEWED, Operation.Status.QUEUED):
        logs: list[Any] = [OperationTarget.objects.filter(operation=operation)]
    else:  # rows it logged one by one, and sets it created whole (docs/tags.md#operations-and-undo)
        logs = [
            OperationChange.objects.filter(operation=operation),
            OperationSet.objects.filter(operation=operation),
        ]
    ids: set[int] = set()
    for rows in logs:
        ids.update(
            rows.filter(media_item_id__gt=after)
            .order_by("media_item_id")
            .values_list("media_item_id", flat=True)
            .distinct()[:limit]
        )
    return sorted(ids)[:limit]
