"""Reads for the operation history: what single-item edits changed (docs/tags.md#history)."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.tags.models import Operation, OperationChange

SINGLE_ITEM_KINDS = (Operation.Kind.EDIT, Operation.Kind.PROMOTE)
CHANGES_SHOWN = 12  # tag names listed per operation; the rest are counted


@dataclass
class EditDelta:
    """The tags one edit added and removed on one item (names, first CHANGES_SHOWN of each)."""

    item_id: int | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    more: int = 0


def operation_edit_deltas(*, operations: list[Operation]) -> dict[int, EditDelta]:
    """For each single-item edit or promotion among `operations`, what it added and removed.

    One read of their OperationChange rows (a page holds at most 50 operations; an edit changes
    few tags), joined with the tag names.
    """
    ids = [op.pk for op in operations if op.kind in SINGLE_ITEM_KINDS]
    deltas: dict[int, EditDelta] = {pk: EditDelta() for pk in ids}
    if not ids:
        return deltas
    rows = (
        OperationChange.objects.filter(operation_id__in=ids)
        .order_by("operation_id", "tag__name")
        .values_list("operation_id", "media_item_id", "tag__name", "after_state")
    )
    for op_id, item_id, name, after in rows:
        delta = deltas[op_id]
        delta.item_id = item_id
        names = delta.added if after == OperationChange.State.CURRENT else delta.removed
        if len(delta.added) + len(delta.removed) < CHANGES_SHOWN:
            names.append(name)
        else:
            delta.more += 1
    return deltas
