"""The deferred effective refresh of bulk jobs (docs/tags.md#deferred-effective-refresh).

A bulk job's set-based chunks write assignments, the change log, set versions and TagStat, and
leave each item's effective tags (with Tag.media_count and MediaItem.tag_count) to this pass,
which the job runs as soon as its last chunk is done. Until then the operation is
`effective_pending` and searches say so (`stale_items`). The pass reads the operation's log in
item order, locks each chunk's items (ascending, as every writer does) and recomputes the tags
the operation changed from the items' current assignments, so it is idempotent: an edit made
meanwhile, a second run after a crash, or the periodic safety net find nothing left to do.
"""

from __future__ import annotations

from django.db import transaction

from apps.tags.models import Operation, OperationChange, TagSet
from apps.tags.services.effective import effective_refresh, effective_refresh_tags, rules_current
from apps.tags.services.operations.apply import lock_items

SETTLE_CHUNK = 10_000
SETTLED_STATUSES = (
    Operation.Status.APPLIED,
    Operation.Status.PARTIAL,
    Operation.Status.CANCELLED,
    Operation.Status.FAILED,
    Operation.Status.UNDONE,
)


def operation_effective_settle(*, operation_id: int) -> int:
    """Refresh the effective tags of the items `operation_id` logged, a chunk per transaction,
    then clear its `effective_pending`; returns the items refreshed (0 when nothing was pending)."""
    operation = Operation.objects.filter(pk=operation_id, effective_pending=True).first()
    if operation is None:
        return 0
    changes = OperationChange.objects.filter(operation_id=operation_id)
    tag_ids = sorted(set(changes.values_list("tag_id", flat=True).distinct()))
    cursor, done = 0, 0
    while True:
        ids = list(
            changes.filter(media_item_id__gt=cursor)
            .order_by("media_item_id")
            .values_list("media_item_id", flat=True)
            .distinct()[:SETTLE_CHUNK]
        )
        if not ids:
            break
        rules = rules_current()
        with transaction.atomic():
            lock_items(ids)
            refreshed = None
            if operation.set_kind == TagSet.Kind.CURATED:
                refreshed = effective_refresh_tags(item_ids=ids, tag_ids=tag_ids, rules=rules)
            if refreshed is None:
                effective_refresh(item_ids=ids, rules=rules)
        cursor, done = ids[-1], done + len(ids)
    Operation.objects.filter(pk=operation_id, status__in=SETTLED_STATUSES).update(effective_pending=False)
    return done


def operations_settle_pending() -> int:
    """The safety net (beat, with `tags.rebuild_stale`): settle every finished operation left
    pending, e.g. by a worker that died between its last chunk and the pass."""
    done = 0
    for operation_id in Operation.objects.filter(
        effective_pending=True, status__in=SETTLED_STATUSES
    ).values_list("pk", flat=True):
        done += operation_effective_settle(operation_id=operation_id)
    return done
