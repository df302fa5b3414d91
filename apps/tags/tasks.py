"""Celery adapters for tag jobs (queue: default)."""

from celery import shared_task

from apps.jobs.exceptions import JobSuperseded


@shared_task(
    name="tags.effective_rebuild", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=(JobSuperseded,)
)
def effective_rebuild_task(*, job_id: int) -> None:
    """Adapter: rebuild the effective tags of stale items."""
    from apps.tags.services import rules

    rules.effective_rebuild_run(job_id=job_id)


@shared_task(name="tags.counters_recount")
def counters_recount_task() -> dict[str, int]:
    """Nightly: recompute tag usage counters from effective tags and report repaired drift."""
    from apps.tags.services.effective import counters_recount

    return counters_recount()


@shared_task(name="tags.rebuild_stale")
def rebuild_stale_task() -> int:
    """Periodic safety net: rebuild items left stale (e.g. a rebuild job was cancelled), end
    operations whose job ended without them (a lost `job_finished`) and settle bulk operations
    whose effective refresh a dead worker left pending."""
    from apps.media.models import MediaItem
    from apps.tags.services import rules
    from apps.tags.services.operations import operations_end_orphaned
    from apps.tags.services.operations.settle import operations_settle_pending

    if MediaItem.objects.filter(effective_stale=True).exists():
        rules.effective_rebuild_start(reason="periodic")
    operations_end_orphaned()
    return operations_settle_pending()


@shared_task(
    name="tags.operation_run", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60, throws=(JobSuperseded,)
)
def operation_run_task(*, job_id: int) -> None:
    """Adapter: apply (or undo) a bulk tag operation chunk by chunk, resuming at its cursor."""
    from apps.tags.services import operations

    operations.operation_run(job_id=job_id)


@shared_task(name="tags.operations_expire")
def operations_expire_task() -> dict[str, int]:
    """Daily: drop expired previews and the change logs of operations past retention."""
    from apps.tags.services import operations

    return operations.operations_expire()
