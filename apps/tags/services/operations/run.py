"""Bulk tag operations and their undo (docs/tags.md#bulk-operations): preview, apply, undo, redo.

    preview = operation_preview(action="add", tags=["smile"], q="1girl -smile", actor=user)
    outcome = operation_apply(operation=preview.operation, actor=user)   # sync, or a queued job
    operation_undo(operation=outcome.operation, actor=user)              # undo; undo it to redo

Applying runs in the request (one transaction) up to BULK_SYNC_MAX_CHANGES assignment changes,
else as a job on the default queue: one transaction per BULK_CHUNK_ITEMS (5,000) items that also advances
`resume_cursor`, so a restarted worker resumes without repeating a chunk, and a cancel stops
after the current chunk (done chunks stay undoable). Additions revive tombstones (docs/tags.md#tombstones: a
person's append does) unless `revive_tombstones=False`; automatic paths never do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError, UnprocessableError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job
from apps.tags import conf
from apps.tags.models import (
    Operation,
    OperationChange,
    OperationSet,
    OperationTarget,
    RuleStatus,
    Tag,
    TagAlias,
    TagType,
    Vocabulary,
)
from apps.tags.services.assignments import CURATED
from apps.tags.services.effective import Rules, effective_deferred, rules_current
from apps.tags.services.names import tags_get_or_create, tags_set_deprecated
from apps.tags.services.operations.apply import ChunkRetry, apply_chunk
from apps.tags.services.operations.counters import counters_merge
from apps.tags.services.operations.ended import operation_job_ended, operation_written
from apps.tags.services.operations.plan import (
    Spec,
    actor_or_none,
    library_rename_check,
    operation_target_ids,
    type_change_check,
    type_changes_plan,
)
from apps.tags.services.operations.preview import Preview, operation_preview
from apps.tags.services.operations.settle import operation_effective_settle
from apps.tags.services.operations.undo import undo_chunk
from apps.tags.services.rules import alias_activate, alias_create, alias_retire

logger = logging.getLogger(__name__)

JOB_KIND = "tags.bulk_operation"
TASK_NAME = "tags.operation_run"
DEADLOCK_CODES = (1213, 1205)  # InnoDB deadlock, lock wait timeout
RETRIES = 3
UNDOABLE_STATUSES = (Operation.Status.APPLIED, Operation.Status.PARTIAL, Operation.Status.CANCELLED)
T = TypeVar("T")


@dataclass
class Outcome:
    """An applied (sync) or queued (job) operation."""

    operation: Operation
    job: Job | None = None


def _retrying(run: Callable[[], T]) -> T:
    """Run a transaction, again (≤ 3 times) after a deadlock or a lost set-creation race.

    Inside an outer transaction a deadlock has already rolled everything back, so it is raised.
    """
    outer = connection.in_atomic_block
    for attempt in range(1, RETRIES + 1):
        try:
            return run()
        except ChunkRetry:
            if attempt == RETRIES:
                raise ConflictError(
                    "Other edits kept changing these items; try again.", code="tags.bulk_contention"
                ) from None
        except OperationalError as exc:
            if outer or attempt == RETRIES or not exc.args or exc.args[0] not in DEADLOCK_CODES:
                raise
            logger.info("bulk operation chunk deadlocked (attempt %s), retrying", attempt)
    raise AssertionError("unreachable")


def operation_can_undo(operation: Operation) -> bool:
    """Whether `operation_undo` would accept this operation now (for buttons)."""
    try:
        _check_undoable(operation)
    except DomainError:
        return False
    return True


# --- apply --------------------------------------------------------------------------------------


def _check_appliable(operation: Operation) -> None:
    if operation.status != Operation.Status.PREVIEWED:
        raise ConflictError(
            f"Operation {operation.pk} is {operation.get_status_display().lower()}; "
            "only a preview can be applied.",
            code="tags.operation_not_previewed",
            details={"status": operation.status},
        )
    ttl = timedelta(hours=conf.bulk_preview_ttl_hours())
    if operation.created_at < timezone.now() - ttl:
        raise ConflictError(
            f"This preview is older than {ttl.total_seconds() / 3600:g} hours; preview again.",
            code="tags.preview_expired",
        )


def _materialise(operation: Operation, spec: Spec) -> Spec:
    """Create the new tags an operation adds and keep their ids in its params."""
    vocabulary = Vocabulary.objects.get(pk=spec.vocabulary_id)
    named = {r.type_id for r in spec.add if r.type_id is not None}
    type_of = {t.pk: t for t in TagType.objects.filter(pk__in=named)}
    types: dict[str, TagType | None] = {r.name: type_of.get(r.type_id or 0) for r in spec.add}
    missing = [r.name for r in spec.add if r.id is None]
    if not missing and not named:
        return spec
    # New tags get the type their prefix named; default-typed ones take it (`char:saber`).
    created = tags_get_or_create(
        vocabulary=vocabulary, names=[r.name for r in spec.add], types=types, type_conflict="refuse"
    )
    if not missing:
        return spec
    spec = spec.with_ids({name: tag.pk for name, tag in created.items()})
    operation.params = {**operation.params, "spec": spec.to_params()}
    operation.save(update_fields=["params", "updated_at"])
    return spec


def operation_apply(*, operation: Operation, actor: Any = None) -> Outcome:
    """Apply a previewed operation to exactly its frozen target, from the items' current state.

    Up to BULK_SYNC_MAX_CHANGES (estimated at preview) it runs here in one transaction and
    returns the applied operation; above, it queues a job (default queue) after commit.
    """
    return _retrying(lambda: _apply(operation.pk, actor))


@transaction.atomic
def _apply(operation_id: int, actor: Any) -> Outcome:
    operation = Operation.objects.select_for_update().get(pk=operation_id)
    _check_appliable(operation)
    params = operation.params.get("spec", {})
    if params.get("action") == "set_type":
        type_change_check(actor)
    if params.get("scope") == "library":
        library_rename_check(actor)
    spec = _materialise(operation, Spec.from_params(operation.params["spec"]))
    actor = actor_or_none(actor)
    if spec.action == "set_type":
        _types_apply(operation, operation.params.get("preview", {}), actor)
        return Outcome(operation=operation)
    if spec.scope == "library":
        _library_rename(operation, spec, actor)
    estimated = int(operation.params.get("preview", {}).get("changes", 0))
    if estimated <= conf.bulk_sync_max_changes():
        _run_all(operation, actor)
        return Outcome(operation=Operation.objects.get(pk=operation.pk))
    total = OperationTarget.objects.filter(operation=operation).count()
    return _queue(operation, actor, total, f"Bulk {spec.action.replace('_', ' ')}")


def _queue(operation: Operation, actor: Any, total: int, title: str) -> Outcome:
    job = job_services.job_start(
        kind=JOB_KIND,
        task=TASK_NAME,
        params={"operation": operation.pk, "query": operation.params.get("input", {}).get("q", "")},
        created_by=actor,
        total=total,
        title=title,
    )
    operation.status = Operation.Status.QUEUED
    operation.job = job
    operation.save(update_fields=["status", "job", "updated_at"])
    return Outcome(operation=operation, job=job)


def _types_apply(operation: Operation, preview: dict[str, Any], actor: Any) -> None:
    """set_type: change Tag.type, remembering each old type (undo restores them)."""
    spec = Spec.from_params(operation.params["spec"])
    changes = type_changes_plan(spec=spec)
    for tag_id, _before, after in changes:
        Tag.objects.filter(pk=tag_id).update(type_id=after, updated_at=timezone.now())
    operation.params = {**operation.params, "type_changes": changes}
    operation.counters = {"tags_changing": len(changes), "changes": len(changes)}
    operation.status = Operation.Status.APPLIED
    operation.save(update_fields=["params", "counters", "status", "updated_at"])


def _library_rename(operation: Operation, spec: Spec, actor: Any) -> None:
    """rename with scope=library: alias old → new (active) and deprecate the old tag."""
    old = Tag.objects.get(pk=spec.remove_ids[0])
    new = Tag.objects.get(pk=spec.add_ids[0])
    alias = alias_create(
        antecedent=old.name,
        consequent=new.name,
        actor=actor,
        reason=f"rename (operation {operation.pk})",
        activate=True,
        vocabulary=old.vocabulary,
    )
    deprecated = [old.pk] if tags_set_deprecated(tag_ids=[old.pk]) else []
    effects = {"alias_activated": alias.pk, "deprecated": deprecated}
    operation.params = {**operation.params, "effects": effects}
    operation.save(update_fields=["params", "updated_at"])


def _effects_reverse(effects: dict[str, Any], actor: Any) -> dict[str, Any]:
    """Undo library side effects (alias activation, deprecation); returns the inverse record."""
    out: dict[str, Any] = {}
    if alias_id := effects.get("alias_activated"):
        alias = TagAlias.objects.filter(pk=alias_id, status=RuleStatus.ACTIVE).first()
        if alias is not None:
            alias_retire(alias=alias, actor=actor)
            out["alias_retired"] = alias_id
    if alias_id := effects.get("alias_retired"):
        alias = TagAlias.objects.filter(pk=alias_id, status=RuleStatus.RETIRED).first()
        if alias is not None:
            alias_activate(alias=alias, actor=actor)
            out["alias_activated"] = alias_id
    if ids := effects.get("deprecated"):
        tags_set_deprecated(tag_ids=ids, deprecated=False)
        out["undeprecated"] = ids
    if ids := effects.get("undeprecated"):
        tags_set_deprecated(tag_ids=ids, deprecated=True)
        out["deprecated"] = ids
    return out


def _root(operation: Operation) -> Operation:
    """The operation an undo chain started from (undo of undo of … X → X)."""
    seen = 0
    while operation.kind == Operation.Kind.UNDO and operation.undo_of_id and seen < 1000:
        operation = Operation.objects.get(pk=int(operation.undo_of_id or 0))
        seen += 1
    return operation


def _next_ids(operation: Operation, cursor: int, size: int) -> list[int]:
    """The next chunk of item ids after `cursor`: frozen targets, or for an undo the items the
    undone operation changed (plus, for a redo, those whose set the undo dropped)."""
    if operation.kind != Operation.Kind.UNDO:
        return list(
            OperationTarget.objects.filter(operation=operation, media_item_id__gt=cursor)
            .order_by("media_item_id")
            .values_list("media_item_id", flat=True)[:size]
        )
    original_id = int(operation.undo_of_id or 0)
    original_kind = Operation.objects.filter(pk=original_id).values_list("kind", flat=True).first()
    ids = set(
        OperationChange.objects.filter(operation_id=original_id, media_item_id__gt=cursor)
        .order_by("media_item_id")
        .values_list("media_item_id", flat=True)
        .distinct()[:size]
    )
    ids.update(  # the items whose sets it created whole (one record per set)
        OperationSet.objects.filter(operation_id=original_id, media_item_id__gt=cursor)
        .order_by("media_item_id")
        .values_list("media_item_id", flat=True)[:size]
    )
    if original_kind == Operation.Kind.UNDO:  # a redo: also the items whose set the undo dropped
        ids.update(
            OperationTarget.objects.filter(operation_id=original_id, media_item_id__gt=cursor)
            .order_by("media_item_id")
            .values_list("media_item_id", flat=True)[:size]
        )
    return sorted(ids)[:size]


def _chunk(
    operation: Operation, item_ids: list[int], actor_id: int | None, rules: Rules | None
) -> dict[str, Any]:
    if operation.kind == Operation.Kind.UNDO:
        original = Operation.objects.get(pk=int(operation.undo_of_id or 0))
        root = _root(original)
        root_spec = Spec.from_params(root.params["spec"]) if "spec" in root.params else None
        return undo_chunk(
            operation_id=operation.pk,
            original=original,
            item_ids=item_ids,
            actor_id=actor_id,
            rules=rules,
            root_spec=root_spec,
            root=root,
        )
    spec = Spec.from_params(operation.params["spec"])
    return apply_chunk(
        operation_id=operation.pk, spec=spec, item_ids=item_ids, actor_id=actor_id, rules=rules
    )


def _step(operation_id: int, actor_id: int | None, rules: Rules | None, job: Job | None = None) -> int | None:
    """One chunk in its own transaction, with the cursor; None when nothing is left. In a job,
    the chunk first proves its attempt is still current (a worker that was paused past its
    heartbeat and taken over writes nothing: JobSuperseded)."""
    with transaction.atomic():
        if job is not None:
            job_services.job_fence(job=job)
        operation = Operation.objects.select_for_update().get(pk=operation_id)
        ids = _next_ids(operation, operation.resume_cursor, conf.bulk_chunk_items())
        if not ids:
            return None
        if job is None:
            part = _chunk(operation, ids, actor_id, rules)
        else:
            # A job leaves effective tags to its follow-up pass (settle.py), owed from this commit.
            with effective_deferred():
                part = _chunk(operation, ids, actor_id, rules)
            operation.effective_pending = True
        operation.counters = counters_merge(operation.counters, {**part, "items_done": len(ids)})
        operation.resume_cursor = ids[-1]
        operation.save(update_fields=["counters", "resume_cursor", "effective_pending", "updated_at"])
        return int(operation.counters.get("items_done", 0))


def _run_all(operation: Operation, actor: Any) -> None:
    """The sync path: every chunk inside the caller's transaction, then `applied`."""
    rules = rules_current()
    actor_id = actor.pk if actor is not None else None
    while _step(operation.pk, actor_id, rules) is not None:
        pass
    _finish(operation.pk, Operation.Status.APPLIED)


def _finish(operation_id: int, status: str, error: str = "") -> Operation:
    operation = Operation.objects.select_for_update().get(pk=operation_id)
    operation.status = status
    operation.error = error[:2000]
    operation.save(update_fields=["status", "error", "updated_at"])
    if operation.kind == Operation.Kind.UNDO and status == Operation.Status.APPLIED:
        Operation.objects.filter(pk=int(operation.undo_of_id or 0)).update(
            status=Operation.Status.UNDONE, undone_by=operation, updated_at=timezone.now()
        )
    return operation


def operation_run(*, job_id: int) -> None:
    """Job body: apply (or undo) chunk by chunk from `resume_cursor`; stops early on cancel.

    Does nothing when the job is not QUEUED (another delivery owns it). A DomainError fails the
    job and leaves done chunks in place (`partially_applied`, still undoable).
    """
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    operation_id = int(job.params["operation"])
    undone = Operation.objects.filter(pk=operation_id, undone_by__isnull=False).exclude(
        undone_by__status__in=(Operation.Status.FAILED, Operation.Status.CANCELLED)
    )
    if undone.exists():  # a retried job whose partial operation was undone meanwhile
        job_services.job_fail(
            job=job,
            code="tags.operation_undone",
            message=f"Operation {operation_id} was undone since this job stopped; apply it again instead.",
        )
        return
    Operation.objects.filter(pk=operation_id).update(
        status=Operation.Status.RUNNING, updated_at=timezone.now()
    )
    operation = Operation.objects.get(pk=operation_id)
    actor_id = operation.created_by_id
    rules = None  # a long job re-reads the rules per chunk (a rule may change meanwhile)
    try:
        while True:
            if job.cancel_requested:
                with transaction.atomic():
                    _finish(operation_id, Operation.Status.CANCELLED)
                operation_effective_settle(operation_id=operation_id)
                job_services.job_finish(job=job, result=Operation.objects.get(pk=operation_id).counters)
                return
            current = job
            done = _retrying(lambda: _step(operation_id, actor_id, rules, current))  # noqa: B023 - called at once
            if done is None:
                break
            job = job_services.job_progress(job=job, done=done)
    except JobSuperseded:
        raise  # another attempt owns the job (and the operation) now; leave both to it
    except DomainError as err:
        _stop(operation_id, err.message)
        operation_effective_settle(operation_id=operation_id)
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    except Exception:
        logger.exception("bulk operation %s failed", operation_id)
        _stop(operation_id, "An internal error stopped the operation; it was logged.")
        job_services.job_fail(
            job=job, code="tags.internal_error", message="An internal error stopped the operation."
        )
        raise  # its done chunks settle in the periodic safety net (operations_settle_pending)
    with transaction.atomic():
        finished = _finish(operation_id, Operation.Status.APPLIED)
    # Applied (and undoable) from here; the effective tags follow (docs/tags.md#deferred-effective-refresh).
    operation_effective_settle(operation_id=operation_id)
    job_services.job_finish(job=job, result=finished.counters)


def _stop(operation_id: int, message: str) -> None:
    with transaction.atomic():
        operation = Operation.objects.select_for_update().get(pk=operation_id)
        ended = Operation.Status.PARTIAL if operation_written(operation) else Operation.Status.FAILED
        _finish(operation_id, ended, message)


# --- undo ---------------------------------------------------------------------------------------


def _check_undoable(operation: Operation) -> None:
    if operation.kind == Operation.Kind.RULE_CHANGE:
        raise UnprocessableError(
            "Rule changes are undone on the rules page (retire or re-activate the rule).",
            code="tags.undo_unsupported",
        )
    undone_by = operation.undone_by
    if undone_by is not None and undone_by.status not in (
        Operation.Status.FAILED,
        Operation.Status.CANCELLED,
    ):
        raise ConflictError(
            f"Operation {operation.pk} is already undone by operation {undone_by.pk}"
            + (f" (redone by {undone_by.undone_by_id})" if undone_by.undone_by_id else "")
            + ".",
            code="tags.already_undone",
            details={"undone_by": undone_by.pk},
        )
    if operation.status not in UNDOABLE_STATUSES:
        raise ConflictError(
            f"Operation {operation.pk} is {operation.get_status_display().lower()}; only applied operations "
            "can be undone.",
            code="tags.operation_not_applied",
            details={"status": operation.status},
        )
    days = conf.bulk_operation_retention_days()
    if operation.created_at < timezone.now() - timedelta(days=days):
        raise ConflictError(
            f"Operation {operation.pk} is older than {days} days; its change log is no longer kept, "
            "so it cannot be undone.",
            code="tags.undo_expired",
            details={"retention_days": days},
        )


def operation_undo(*, operation: Operation, actor: Any = None) -> Outcome:
    """Revert an operation as a new `undo` operation (undo an undo to redo).

    Assignments changed since by someone else are skipped and counted as conflicts (the later
    edit wins). Small undos run here; large ones queue a job like `operation_apply`.
    """
    return _retrying(lambda: _undo(operation.pk, actor))


@transaction.atomic
def _undo(operation_id: int, actor: Any) -> Outcome:
    original = Operation.objects.select_for_update().select_related("undone_by").get(pk=operation_id)
    _check_undoable(original)
    # Undoing (or redoing) a type change or a library rename changes types or rules again: the
    # same permissions as applying them.
    if original.params.get("type_changes"):
        type_change_check(actor)
    if original.params.get("effects"):
        library_rename_check(actor)
    actor = actor_or_none(actor)
    undo = Operation.objects.create(
        kind=Operation.Kind.UNDO,
        status=Operation.Status.RUNNING,
        params={"undo_of": original.pk, "of_kind": original.kind},
        target_kind="undo",
        set_kind=original.set_kind,
        undo_of=original,
        summary=f"undo #{original.pk}: {original.summary}"[:500],
        created_by=actor,
    )
    original.undone_by = undo
    original.save(update_fields=["undone_by", "updated_at"])
    if effects := original.params.get("effects"):
        undo.params = {**undo.params, "effects": _effects_reverse(effects, actor)}
        undo.save(update_fields=["params", "updated_at"])
    if changes := original.params.get("type_changes"):
        _types_undo(undo, changes)
        return Outcome(operation=_finish(undo.pk, Operation.Status.APPLIED))
    estimated = OperationChange.objects.filter(operation=original).count()
    estimated += OperationSet.objects.filter(operation=original).aggregate(n=Sum("rows"))["n"] or 0
    if original.kind == Operation.Kind.UNDO:
        estimated += OperationTarget.objects.filter(operation=original).count()
    if estimated <= conf.bulk_sync_max_changes():
        _run_all(undo, actor)
        return Outcome(operation=Operation.objects.get(pk=undo.pk))
    total = (
        OperationChange.objects.filter(operation=original).values("media_item_id").distinct().count()
        + OperationSet.objects.filter(operation=original).count()
    )  # an item counted twice at most makes the progress bar's total a little high
    return _queue(undo, actor, total, f"Undo #{original.pk}")


def _types_undo(undo: Operation, changes: list[list[int]]) -> None:
    """Restore each tag's type unless it was changed again since (then it is a conflict)."""
    now_types = dict(Tag.objects.filter(pk__in=[c[0] for c in changes]).values_list("pk", "type_id"))
    restored, conflicts = [], []
    for tag_id, before, after in changes:
        if now_types.get(tag_id) == after:
            Tag.objects.filter(pk=tag_id).update(type_id=before, updated_at=timezone.now())
            restored.append([tag_id, after, before])
        else:
            conflicts.append({"tag": tag_id, "type_now": now_types.get(tag_id)})
    undo.params = {**undo.params, "type_changes": restored}
    undo.counters = {
        "restored": len(restored),
        "conflicts": len(conflicts),
        "conflict_samples": conflicts[:50],
        "changes": len(restored),
    }
    undo.save(update_fields=["params", "counters", "updated_at"])


# --- one-call bulk and housekeeping ---------------------------------------------------------------


def operation_bulk(*, dry_run: bool, actor: Any = None, **request: Any) -> tuple[Preview, Outcome | None]:
    """POST /api/tags/bulk: preview, and unless `dry_run` apply it at once (sync or job)."""
    preview = operation_preview(actor=actor, **request)
    if dry_run:
        return preview, None
    return preview, operation_apply(operation=preview.operation, actor=actor)


def operation_cancel(*, operation: Operation, actor: Any = None) -> Operation:
    """Ask a queued or running operation's job to stop after its current chunk."""
    if operation.job_id is None or operation.status not in (
        Operation.Status.QUEUED,
        Operation.Status.RUNNING,
    ):
        raise ConflictError(f"Operation {operation.pk} is not running.", code="tags.operation_not_running")
    assert operation.job is not None
    job = job_services.job_cancel(job=operation.job)
    if job.status == Job.Status.CANCELLED:  # it was queued: it ends here (and in job_finished)
        operation_job_ended(job_id=job.pk, status=job.status)
    return Operation.objects.get(pk=operation.pk)


def operations_expire(*, now: Any = None) -> dict[str, int]:
    """Delete previews past BULK_PREVIEW_TTL_HOURS and the change logs of operations past
    BULK_OPERATION_RETENTION_DAYS (those can no longer be undone; their rows stay as history)."""
    now = now or timezone.now()
    previews = Operation.objects.filter(
        status=Operation.Status.PREVIEWED,
        created_at__lt=now - timedelta(hours=conf.bulk_preview_ttl_hours()),
    )
    dropped = previews.count()
    previews.delete()
    old = Operation.objects.filter(
        created_at__lt=now - timedelta(days=conf.bulk_operation_retention_days())
    ).values("pk")
    logs, _ = OperationChange.objects.filter(operation_id__in=old).delete()
    whole, _ = OperationSet.objects.filter(operation_id__in=old).delete()
    targets, _ = OperationTarget.objects.filter(operation_id__in=old).delete()
    return {"previews": dropped, "changes": logs + whole, "targets": targets}


__all__ = [
    "CURATED",
    "Outcome",
    "Preview",
    "operation_apply",
    "operation_bulk",
    "operation_can_undo",
    "operation_cancel",
    "operation_preview",
    "operation_run",
    "operation_target_ids",
    "operation_undo",
    "operations_expire",
]
