"""Preview and apply a mapping profile (docs/mappings.md#preview-and-apply).

Apply writes, per item, one `derived` tag set for the profile (slot `profile:<id>`, target
vocabulary) through the tags app's one writer (`assignments_write`), replacing what the set
held before (rows no longer wanted become tombstones), as a logged `map` Operation that tags'
`operation_undo` reverts. Sets it creates are written whole and set-based by
`sets_create_filled`, with one undo record per set (`OperationSet`), so undo drops those sets;
sets from an earlier apply change row by row, each row logged. Up to SYNC_MAX_ITEMS items run in
the request; above, a job on the default queue works in CHUNK_ITEMS chunks, one transaction
each, resuming at `Operation.resume_cursor`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.mappings.models import MappedSet, MappingProfile
from apps.mappings.pipeline import Compiled, Result, gc_paused, map_item
from apps.mappings.selectors import chunk_prepare, compile_profile, profile_sets, sets_version
from apps.tags import slots
from apps.tags.models import Operation, OperationTarget, TagAssignment, TagSet
from apps.tags.services.assignments import (
    ABSENT,
    CURRENT,
    DELETED,
    Transition,
    assignments_write,
)
from apps.tags.services.assignments_sets import sets_create_filled
from apps.tags.services.effective import Rules, rules_current
from apps.tags.services.operations import operation_target_ids, operation_undo
from apps.tags.services.operations.apply import lock_items
from apps.tags.services.operations.plan import actor_or_none, operation_target_freeze
from apps.tags.services.sql import rows_insert

logger = logging.getLogger(__name__)

SYNC_MAX_ITEMS = 10_000
CHUNK_ITEMS = 2_000
APPLY_JOB = "mappings.apply"
APPLY_TASK = "mappings.apply_run"
DERIVED = TagSet.Kind.DERIVED
Via = TagAssignment.Via
MAPPED_COLUMNS = (
    "tagset_id",
    "profile_id",
    "media_item_id",
    "profile_version",
    "sets_version",
    "operation_id",
    "incomplete",
    "applied_at",
    "applied_by_id",
)


@dataclass
class Prepared:
    """A compiled profile and the stamp its output carries."""

    profile: MappingProfile
    compiled: Compiled
    vocabulary_ids: list[int]
    profile_version: int
    sets_version: int
    rules: Rules


def prepare(profile: MappingProfile, rules: Rules | None = None) -> Prepared:
    """Compile a profile; a profile with no steps is a 400 naming what to fix."""
    if not profile_sets(profile):
        raise DomainError(
            f"Profile {profile.slug!r} has no mapping sets; add at least one step.",
            code="mappings.no_steps",
        )
    rules = rules or rules_current()
    compiled, vocabularies = compile_profile(profile, rules)
    return Prepared(profile, compiled, vocabularies, profile.version, sets_version(profile), rules)


def results_for(prepared: Prepared, item_ids: Sequence[int], *, caption: bool = True) -> dict[int, Result]:
    """The pipeline's result for each item (inputs read set-based for the whole chunk); with
    `caption=False` the results carry no rendered caption."""
    inputs = chunk_prepare(
        profile=prepared.profile,
        compiled=prepared.compiled,
        vocabulary_ids=prepared.vocabulary_ids,
        item_ids=item_ids,
    )
    with gc_paused():
        compiled = prepared.compiled
        return {item_id: map_item(compiled, inputs[item_id], caption=caption) for item_id in item_ids}


# --- apply ----------------------------------------------------------------------------------------


def _transitions(
    item_id: int, set_id: int, result: Result, rows: dict[int, tuple[int, int | None, str]]
) -> list[Transition]:
    """The rows that make one derived set equal `result`: tags no longer wanted become
    tombstones, wanted ones are inserted, revived or moved (the set is the profile's own, so a
    re-apply replaces it entirely; edits belong in rules or the curated set)."""
    wanted = {tag_id: n for n, tag_id in enumerate(result.tag_ids)}
    out: list[Transition] = []
    for tag_id, (state, position, via) in rows.items():
        n = wanted.get(tag_id)
        if state == CURRENT and n is None:
            out.append(
                Transition(
                    set_id, tag_id, item_id, CURRENT, DELETED, before_position=position, before_via=via
                )
            )
        elif n is not None and (state != CURRENT or position != n):
            out.append(
                Transition(
                    set_id,
                    tag_id,
                    item_id,
                    state,
                    CURRENT,
                    position=n,
                    via=Via.MAPPING,
                    before_position=position,
                    before_via=via,
                )
            )
    for tag_id, n in wanted.items():
        if tag_id not in rows:
            out.append(Transition(set_id, tag_id, item_id, ABSENT, CURRENT, position=n, via=Via.MAPPING))
    return out


def apply_chunk(
    *, prepared: Prepared, operation_id: int, item_ids: Sequence[int], actor_id: int | None
) -> dict[str, Any]:
    """Write one chunk's derived sets in the caller's transaction; returns its counters."""
    ids = sorted(set(item_ids))
    lock_items(ids)
    results = results_for(prepared, ids, caption=False)  # a set stores tags, not captions
    profile = prepared.profile
    slot = slots.mapping(profile.pk)
    sets_of = {
        "media_item_id__in": ids,
        "kind": DERIVED,
        "vocabulary_id": profile.target_vocabulary_id,
        "slot": slot,
    }
    existing = dict(TagSet.objects.filter(**sets_of).values_list("media_item_id", "pk"))
    # New sets (the bulk of a first apply): created whole, set-based, one undo record per set.
    created = sets_create_filled(
        {i: results[i].tag_ids for i in ids if i not in existing},
        kind=DERIVED,
        vocabulary_id=profile.target_vocabulary_id,
        slot=slot,
        origin_label=f"mapping profile {profile.slug}",
        via=Via.MAPPING,
        operation_id=operation_id,
        actor_id=actor_id,
        rules=prepared.rules,
    )
    # Sets from an earlier apply: replaced row by row (tombstones, moves, revivals), logged per row.
    rows: dict[int, dict[int, tuple[int, int | None, str]]] = {s: {} for s in existing.values()}
    for set_id, tag_id, state, position, via in TagAssignment.objects.filter(
        tagset_id__in=sorted(existing.values())
    ).values_list("tagset_id", "tag_id", "state", "position", "added_via"):
        rows[set_id][tag_id] = (state, position, via)
    transitions: list[Transition] = []
    for item_id, set_id in existing.items():
        transitions += _transitions(item_id, set_id, results[item_id], rows[set_id])
    written = assignments_write(
        transitions, kind=DERIVED, operation_id=operation_id, actor_id=actor_id, rules=prepared.rules
    )
    sets = {**existing, **created}
    MappedSet.objects.filter(tagset_id__in=sorted(existing.values())).delete()
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    rows_insert(
        MappedSet,
        MAPPED_COLUMNS,
        [
            (
                set_id,
                profile.pk,
                item_id,
                prepared.profile_version,
                prepared.sets_version,
                operation_id,
                "incomplete" in results[item_id].flags,
                stamp,
                actor_id,
            )
            for item_id, set_id in sorted(sets.items())
        ],
    )
    flags = Counter(f for r in results.values() for f in r.flags)
    return {
        "items_done": len(ids),
        "items_changing": len(written.items) + len(created),
        "changes": written.changes + sum(len(results[i].tag_ids) for i in created),
        "sets_created": len(created),
        **{f"flag_{k}": v for k, v in flags.items()},
    }


def _merge(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    out = dict(total)
    for key, value in part.items():
        out[key] = out.get(key, 0) + value
    return out


@dataclass
class Outcome:
    operation: Operation
    job: Job | None = None


def mapping_apply(
    *, profile: MappingProfile, q: str | None = None, ids: Sequence[Any] | None = None, actor: Any = None
) -> Outcome:
    """Apply a profile to the items of `q`/`ids`: here up to SYNC_MAX_ITEMS, else as a job."""
    prepared = prepare(profile)
    actor = actor_or_none(actor)
    item_ids = operation_target_ids(q=q, ids=ids, viewer=actor)
    with transaction.atomic():
        operation = Operation.objects.create(
            kind=Operation.Kind.MAP,
            status=Operation.Status.RUNNING,
            params={
                "profile": profile.pk,
                "profile_slug": profile.slug,
                "profile_version": prepared.profile_version,
                "sets_version": prepared.sets_version,
                "q": q or "",
                "items": len(item_ids),
            },
            target_kind="query" if q else "selection",
            set_kind=DERIVED,
            summary=f"map with profile {profile.slug} (v{profile.version}) on {len(item_ids)} items"[:500],
            created_by=actor,
        )
        operation_target_freeze(operation=operation, item_ids=item_ids)
        if len(item_ids) <= SYNC_MAX_ITEMS:
            actor_id = actor.pk if actor is not None else None
            counters: dict[str, Any] = {}
            for start in range(0, len(item_ids), CHUNK_ITEMS):
                chunk = item_ids[start : start + CHUNK_ITEMS]
                counters = _merge(
                    counters,
                    apply_chunk(
                        prepared=prepared, operation_id=operation.pk, item_ids=chunk, actor_id=actor_id
                    ),
                )
            operation.counters = counters
            operation.resume_cursor = item_ids[-1] if item_ids else 0
            operation.status = Operation.Status.APPLIED
            operation.save(update_fields=["counters", "resume_cursor", "status", "updated_at"])
            return Outcome(operation)
        job = job_services.job_start(
            kind=APPLY_JOB,
            task=APPLY_TASK,
            params={"operation": operation.pk},
            created_by=actor,
            total=len(item_ids),
            title=f"Apply mapping profile {profile.slug}",
        )
        operation.status = Operation.Status.QUEUED
        operation.job = job
        operation.save(update_fields=["status", "job", "updated_at"])
        return Outcome(operation, job)


def _step(operation_id: int, prepared: Prepared) -> int | None:
    with transaction.atomic():
        operation = Operation.objects.select_for_update().get(pk=operation_id)
        ids = list(
            OperationTarget.objects.filter(operation=operation, media_item_id__gt=operation.resume_cursor)
            .order_by("media_item_id")
            .values_list("media_item_id", flat=True)[:CHUNK_ITEMS]
        )
        if not ids:
            return None
        part = apply_chunk(
            prepared=prepared, operation_id=operation.pk, item_ids=ids, actor_id=operation.created_by_id
        )
        operation.counters = _merge(operation.counters, part)
        operation.resume_cursor = ids[-1]
        operation.save(update_fields=["counters", "resume_cursor", "updated_at"])
        return int(operation.counters.get("items_done", 0))


def _finish(operation_id: int, status: str, error: str = "") -> Operation:
    Operation.objects.filter(pk=operation_id).update(
        status=status, error=error[:2000], updated_at=timezone.now()
    )
    return Operation.objects.get(pk=operation_id)


def mapping_apply_run(*, job_id: int) -> None:
    """Job body: apply chunk by chunk from the operation's cursor; stops on cancel."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    operation_id = int(job.params["operation"])
    operation = _finish(operation_id, Operation.Status.RUNNING)
    try:
        prepared = prepare(MappingProfile.objects.get(pk=int(operation.params["profile"])))
        while True:
            if job.cancel_requested:
                done = _finish(operation_id, Operation.Status.CANCELLED)
                job_services.job_finish(job=job, result=done.counters)
                return
            progress = _step(operation_id, prepared)
            if progress is None:
                break
            job = job_services.job_progress(job=job, done=progress)
    except DomainError as err:
        started = Operation.objects.filter(pk=operation_id, resume_cursor__gt=0).exists()
        _finish(operation_id, Operation.Status.PARTIAL if started else Operation.Status.FAILED, err.message)
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    except Exception:
        logger.exception("mapping apply %s failed", operation_id)
        _finish(operation_id, Operation.Status.FAILED, "An internal error stopped the apply; it was logged.")
        job_services.job_fail(
            job=job, code="mappings.internal_error", message="An internal error stopped the apply."
        )
        raise
    job_services.job_finish(job=job, result=_finish(operation_id, Operation.Status.APPLIED).counters)


def mapping_redo(*, root: Operation, operation_id: int, item_ids: Sequence[int], actor_id: int | None) -> int:
    """Redo handler (registered with tags in MappingsConfig.ready): apply the profile of the
    mapping operation `root` again to items whose derived sets an undo had dropped, as part of
    the redo operation; with the profile as it is now. Returns the rows changed (0 when the
    profile is gone)."""
    profile = MappingProfile.objects.filter(pk=int(root.params.get("profile") or 0)).first()
    if profile is None:
        return 0
    part = apply_chunk(
        prepared=prepare(profile), operation_id=operation_id, item_ids=item_ids, actor_id=actor_id
    )
    return int(part["changes"])


def mapping_undo(*, operation: Operation, actor: Any = None) -> Operation:
    """Undo a mapping apply with tags' operation undo (its sets come back as they were)."""
    if operation.kind != Operation.Kind.MAP:
        raise ConflictError(
            f"Operation {operation.pk} is not a mapping apply.", code="mappings.not_a_mapping_operation"
        )
    return operation_undo(operation=operation, actor=actor).operation
