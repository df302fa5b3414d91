"""Scheme runs (docs/taggers.md#tagging-schemes).

`scheme_run_start` records a pending `SchemeRun` and its planning job (`schemes.run`, default
queue). Planning resolves each step's tagger version once, creates the `StepRun`s and starts a
job per step whose dependencies are done, on the step kind's queue (`taggers.detect`,
`taggers.wd`, `taggers.caption`, `taggers.vectors`). A step job works through the run's items in batches: each
batch runs the backend on the items lacking output for the step's version and input fingerprint,
then writes the outputs, their markers and the StepRun's counters in one transaction. The job
that finishes a step starts the steps it unblocks (no chords: every hand-off is a job row, so
the file-spool broker works); the last one sets the run's status. A DomainError fails its step
and skips the steps below it; items that failed make the run `partial`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError, NotFoundError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.taggers import conf
from apps.taggers.models import SchemeRun, StepOutput, StepRun, Tagger, TaggerVersion, TaggingScheme
from apps.taggers.services import scheme_steps
from apps.taggers.services.schemes import ACTIVE, Step, definition_steps

logger = logging.getLogger(__name__)

RUN_JOB = RUN_TASK = "schemes.run"
STEP_JOB = "schemes.step"
STEP_TASKS: dict[str, str] = {
    Tagger.Kind.DETECTOR: "taggers.detect",
    Tagger.Kind.WD_ONNX: "taggers.wd",
    Tagger.Kind.CAPTIONER: "taggers.caption",
    Tagger.Kind.EMBEDDING_HEAD: "taggers.vectors",
    Tagger.Kind.CLIP_ZEROSHOT: "taggers.vectors",
}
PIXEL_STEPS = (Tagger.Kind.DETECTOR, Tagger.Kind.WD_ONNX)  # queue ml: the CPU estimate applies
BATCH_ITEMS = 128
EXPLICIT_MAX = 100_000
EXPLICIT_WINDOW = 5_000  # ids per IN (…) of an explicit selection
PIXEL_KINDS = (MediaItem.Kind.IMAGE, MediaItem.Kind.FRAME)
DONE = (StepRun.Status.SUCCEEDED, StepRun.Status.PARTIAL)
ENDED = (*DONE, StepRun.Status.FAILED, StepRun.Status.SKIPPED)


def _explicit_ids(
    item_ids: Sequence[Any] | None, q: str | None, actor: Any, items: QuerySet[MediaItem] | None = None
) -> list[int]:
    if items is not None:
        base = items.filter(kind__in=PIXEL_KINDS)
        ids = list(base.order_by("pk").values_list("pk", flat=True)[: EXPLICIT_MAX + 1])
    elif q:
        from apps.search.query import search_queryset

        base = search_queryset(q=q, viewer=actor).filter(kind__in=PIXEL_KINDS)
        ids = list(base.order_by("pk").values_list("pk", flat=True)[: EXPLICIT_MAX + 1])
    else:
        wanted = sorted({int(i) for i in item_ids or []})
        ids = list(
            MediaItem.objects.filter(pk__in=wanted, kind__in=PIXEL_KINDS)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        missing = sorted(set(wanted) - set(ids))
        if missing:
            raise NotFoundError(
                f"No image or frame with id {', '.join(map(str, missing[:10]))}.",
                code="taggers.items_not_found",
                details={"missing": missing[:100]},
            )
    if not ids:
        raise DomainError("The selection has no images or frames.", code="taggers.empty_selection")
    if len(ids) > EXPLICIT_MAX:
        raise DomainError(
            f"An explicit selection holds at most {EXPLICIT_MAX} items; use a schedule or `all`.",
            code="taggers.selection_too_large",
        )
    return ids


@transaction.atomic
def scheme_run_start(
    *,
    scheme: TaggingScheme,
    selection: str = SchemeRun.Selection.ALL,
    item_ids: Sequence[Any] | None = None,
    q: str | None = None,
    items: QuerySet[MediaItem] | None = None,
    force: bool = False,
    batch_size: int = BATCH_ITEMS,
    actor: Any = None,
    origin: str = "api",
) -> SchemeRun:
    """A pending run of the scheme's current definition and its planning job. At most one run
    per scheme is pending or running (ConflictError naming it). An explicit selection is
    `item_ids`, a query `q`, or `items` (a MediaItem queryset: how datasets and intake hand over
    their items)."""
    if selection not in SchemeRun.Selection.values:
        raise DomainError(f"Unknown selection {selection!r}.", code="taggers.bad_selection")
    if (selection == SchemeRun.Selection.EXPLICIT) != bool(item_ids or q or items is not None):
        raise DomainError(
            "Give `item_ids` or `q` exactly when the selection is `explicit`.", code="taggers.bad_selection"
        )
    scheme = TaggingScheme.objects.select_for_update().get(pk=scheme.pk)
    active = SchemeRun.objects.filter(scheme=scheme, status__in=SchemeRun.ACTIVE).first()
    if active is not None:
        raise ConflictError(
            f"Scheme {scheme.name!r} already has run {active.pk} {active.status}; wait for it or cancel it.",
            code="taggers.scheme_run_active",
            details={"run": active.pk},
        )
    if scheme.current_definition_id is None:
        raise DomainError(f"Scheme {scheme.name!r} has no definition.", code="taggers.scheme_invalid")
    explicit = _explicit_ids(item_ids, q, actor, items) if selection == SchemeRun.Selection.EXPLICIT else []
    user = actor if actor is not None and actor.is_authenticated else None
    run = SchemeRun.objects.create(
        scheme=scheme,
        definition_id=scheme.current_definition_id,
        selection=selection,
        item_ids=explicit,
        query=q or "",
        params={"force": bool(force), "batch_size": max(1, min(int(batch_size), 256)), "origin": origin},
        created_by=user,
    )
    run.job = job_services.job_start(
        kind=RUN_JOB,
        task=RUN_TASK,
        params={"run": run.pk},
        created_by=user,
        title=f"Run scheme {scheme.name}",
    )
    run.save(update_fields=["job"])
    return run


def _resolve(step: Step, taggers: dict[int, Tagger]) -> TaggerVersion:
    tagger = taggers.get(step.tagger_id)
    if tagger is None:
        raise DomainError(f"Step {step.key!r}: its tagger was deleted.", code="taggers.tagger_missing")
    if tagger.kind not in STEP_TASKS:
        raise DomainError(
            f"Step {step.key!r}: tagger {tagger.name!r} is now a {tagger.kind} tagger, which cannot "
            "run in a scheme.",
            code="taggers.backend_unsupported",
        )
    if step.version == ACTIVE:
        version = tagger.active_version
        if version is None:
            raise DomainError(
                f"Step {step.key!r}: tagger {tagger.name!r} has no active version; promote one or pin "
                "a ready version.",
                code="taggers.no_active_version",
            )
    else:
        version = TaggerVersion.objects.filter(tagger=tagger, number=step.version).first()
        if version is None:
            raise DomainError(
                f"Step {step.key!r}: version {step.version} of {tagger.name!r} is gone.",
                code="taggers.version_missing",
            )
    if version.status != TaggerVersion.Status.READY:
        raise DomainError(
            f"Step {step.key!r}: version {version.number} of {tagger.name!r} is {version.status}, not ready.",
            code="taggers.version_not_ready",
        )
    return version


def _plan(run: SchemeRun) -> None:
    """Resolve versions once, create the StepRuns (a step whose version cannot be resolved fails
    at once), freeze the selection's bounds, then start what can start."""
    steps = definition_steps(run.definition)
    taggers = {
        t.pk: t
        for t in Tagger.objects.select_related("active_version").filter(
            pk__in=[s.tagger_id for s in steps.values()]
        )
    }
    rows = []
    for step in steps.values():
        try:
            rows.append(StepRun(run=run, step_key=step.key, resolved_version=_resolve(step, taggers)))
        except DomainError as err:
            rows.append(StepRun(run=run, step_key=step.key, status=StepRun.Status.FAILED, error=err.message))
    StepRun.objects.bulk_create(rows)
    params = dict(run.params)
    params["max_item"] = MediaItem.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if run.selection == SchemeRun.Selection.NEW_SINCE_LAST:
        last = (
            SchemeRun.objects.filter(scheme=run.scheme, status=SchemeRun.Status.SUCCEEDED)
            .exclude(pk=run.pk)
            .order_by("-started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        params["since"] = last.isoformat() if last else None
    run.params = params
    run.status = SchemeRun.Status.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["params", "status", "started_at"])
    _advance(run)


def scheme_run_plan(*, job_id: int) -> None:
    """Job body of `schemes.run`."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    with transaction.atomic():
        run = SchemeRun.objects.select_for_update().get(pk=int(job.params["run"]))
        if run.status == SchemeRun.Status.PENDING:
            _plan(run)
    job_services.job_finish(job=job, result={"run": run.pk, "status": run.status})


def _dependants_skip(run: SchemeRun, steps: dict[str, Step], rows: dict[str, StepRun]) -> None:
    changed = True
    while changed:
        changed = False
        for key, row in rows.items():
            if row.status != StepRun.Status.PENDING:
                continue
            blocked = [
                d for d in sorted(steps[key].deps()) if rows[d].status in (StepRun.Status.FAILED, "skipped")
            ]
            if blocked:
                row.status = StepRun.Status.SKIPPED
                row.error = f"Skipped: step {blocked[0]!r} {rows[blocked[0]].status}."
                row.save(update_fields=["status", "error", "updated_at"])
                changed = True


def _advance(run: SchemeRun) -> None:
    """With the run row locked: skip the steps below failures, start the unblocked ones, and
    settle the run's status once every step has ended."""
    if run.status != SchemeRun.Status.RUNNING:
        return
    steps = definition_steps(run.definition)
    rows = {r.step_key: r for r in StepRun.objects.select_for_update().filter(run=run)}
    _dependants_skip(run, steps, rows)
    taggers = dict(
        Tagger.objects.filter(pk__in=[s.tagger_id for s in steps.values()]).values_list("pk", "name")
    )
    for key, row in rows.items():
        if row.status != StepRun.Status.PENDING or any(rows[d].status not in DONE for d in steps[key].deps()):
            continue
        row.job = job_services.job_start(
            kind=STEP_JOB,
            task=STEP_TASKS[steps[key].kind],
            params={"step_run": row.pk},
            created_by=run.created_by,
            title=f"Scheme {run.scheme.name} step {key} ({taggers.get(steps[key].tagger_id, '?')})",
        )
        row.status = StepRun.Status.RUNNING
        row.save(update_fields=["job", "status", "updated_at"])
    if all(r.status in ENDED for r in rows.values()):
        statuses = {r.status for r in rows.values()}
        if StepRun.Status.FAILED in statuses:
            run.status = SchemeRun.Status.FAILED
        elif StepRun.Status.PARTIAL in statuses:
            run.status = SchemeRun.Status.PARTIAL
        else:
            run.status = SchemeRun.Status.SUCCEEDED
        totals: dict[str, int] = {}
        for row in rows.values():
            for name, value in row.counts.items():
                if isinstance(value, int) and name != "cursor":
                    totals[name] = totals.get(name, 0) + value
        run.counts = totals
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "counts", "finished_at"])


# --- step jobs ------------------------------------------------------------------------------------


def _selection(
    run: SchemeRun, ctx: scheme_steps.StepContext, window: Sequence[int] = ()
) -> QuerySet[MediaItem]:
    """The run's items that this step still owes: in the selection (an explicit one a window of
    its ids at a time) and, unless forced, lacking a marker for the step's version and input
    fingerprint."""
    items = MediaItem.objects.filter(kind__in=PIXEL_KINDS, pk__lte=int(run.params.get("max_item") or 0))
    lacking = ~Exists(
        StepOutput.objects.filter(
            tagger_version=ctx.version, fingerprint=ctx.fingerprint, item_id=OuterRef("pk")
        )
    )
    if run.selection == SchemeRun.Selection.EXPLICIT:
        items = items.filter(pk__in=list(window))
    elif run.selection == SchemeRun.Selection.NEW_SINCE_LAST and ctx.force:
        since = run.params.get("since")
        items = items.filter(Q(created_at__gte=since) | lacking) if since else items
    if ctx.force:
        return items
    return items.filter(lacking)


def _context(row: StepRun) -> scheme_steps.StepContext:
    run = row.run
    steps = definition_steps(run.definition)
    versions = {
        r.step_key: r.resolved_version
        for r in StepRun.objects.select_related("resolved_version").filter(run=run)
        if r.resolved_version is not None
    }
    step = steps[row.step_key]
    version = versions[row.step_key]
    return scheme_steps.StepContext(
        step=step,
        steps=steps,
        tagger=Tagger.objects.select_related("vocabulary", "embedding_space").get(pk=step.tagger_id),
        version=version,
        versions=versions,
        fingerprint=scheme_steps.step_fingerprint(step, steps, versions),
        force=bool(run.params.get("force")),
    )


def _batch_commit(
    row_id: int, ctx: scheme_steps.StepContext, result: scheme_steps.BatchResult, cursor: int
) -> StepRun:
    """Outputs, markers and the StepRun's counters of one batch, in one transaction (the tags it
    needs are created just before, outside it: docs/taggers.md#outputs)."""
    scheme_steps.batch_prepare(ctx, result)
    with transaction.atomic():
        row = StepRun.objects.select_for_update().select_related("run").get(pk=row_id)
        part = scheme_steps.batch_write(ctx, result, row.run.created_by_id)
        counts = dict(row.counts)
        for name, value in part.items():
            counts[name] = counts.get(name, 0) + value
        counts["cursor"] = cursor
        if result.errors:
            errors = dict(counts.get("errors") or {})
            for item_id, message in list(result.errors.items())[: max(0, 20 - len(errors))]:
                errors[str(item_id)] = message[:300]
            counts["errors"] = errors
        row.counts = counts
        row.save(update_fields=["counts", "updated_at"])
    return row


def _step_end(row_id: int, status: str, error: str = "") -> None:
    with transaction.atomic():
        row = StepRun.objects.select_related("run").get(pk=row_id)
        run = SchemeRun.objects.select_for_update().get(pk=row.run_id)
        row = StepRun.objects.select_for_update().get(pk=row_id)
        if row.status == StepRun.Status.RUNNING:
            row.status = status
            row.error = error[:2000]
            row.save(update_fields=["status", "error", "updated_at"])
        _advance(run)


def _work(job: Job, row: StepRun) -> Job:
    ctx = _context(row)
    size = int(row.run.params.get("batch_size") or BATCH_ITEMS)
    cursor = int(row.counts.get("cursor") or 0)
    explicit = row.run.selection == SchemeRun.Selection.EXPLICIT
    if explicit:
        total = sum(1 for i in row.run.item_ids if i > cursor)  # at most: done ones are skipped
    else:
        total = _selection(row.run, ctx).filter(pk__gt=cursor).count()
    job = job_services.job_progress(job=job, done=0, total=total)
    done = 0
    while not job.cancel_requested:
        window = [i for i in row.run.item_ids if i > cursor][:EXPLICIT_WINDOW] if explicit else []
        if explicit and not window:
            break
        ids = list(
            _selection(row.run, ctx, window)
            .filter(pk__gt=cursor)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            if not explicit:
                break
            cursor = window[-1]  # this window is done; the next one may still owe items
            continue
        started = time.monotonic()
        result = scheme_steps.batch_compute_retrying(ctx, ids)
        cursor = ids[-1]
        row = _batch_commit(row.pk, ctx, result, cursor)
        if done == 0:
            _check_cpu_estimate(ctx, time.monotonic() - started, len(ids), total - len(ids))
        done += len(ids)
        job = job_services.job_progress(job=job, done=done)
    return job


def _check_cpu_estimate(ctx: scheme_steps.StepContext, seconds: float, batch: int, remaining: int) -> None:
    """On a worker without CUDA, a model step (queue ml) whose estimate from its first batch is
    over BAGGINTAG_CPU_JOB_LIMIT_S fails with a clear message; what was written stays and a
    GPU worker resumes it on the next run."""
    if ctx.step.kind not in PIXEL_STEPS or remaining <= 0:
        return
    from apps.taggers.engine.wd import onnx_device

    if onnx_device() != "cpu":
        return
    estimate = seconds / max(1, batch) * remaining
    limit = conf.cpu_job_limit_s()
    if estimate > limit:
        raise DomainError(
            f"Step {ctx.step.key!r}: the remaining {remaining} items would take about "
            f"{estimate / 3600:.1f} h on this CPU-only worker (limit {limit / 3600:.1f} h, "
            "BAGGINTAG_CPU_JOB_LIMIT_S). Run it on a worker with a GPU (queue ml) or on fewer items; "
            "what was done is kept.",
            code="taggers.cpu_job_too_long",
        )


def step_run_execute(*, job_id: int) -> None:
    """Job body of a step task (`taggers.detect`, `taggers.wd`, `taggers.caption`,
    `taggers.vectors`)."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    row = StepRun.objects.select_related("run", "run__definition").get(pk=int(job.params["step_run"]))
    if row.status != StepRun.Status.RUNNING:
        job_services.job_finish(job=job, result={"step": row.step_key, "status": row.status})
        return
    try:
        job = _work(job, row)
    except DomainError as err:
        with transaction.atomic():  # the step, the run and the job end together
            _step_end(row.pk, StepRun.Status.FAILED, err.message)
            job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    except Exception:
        # A bug or an outage: the step fails (a re-run does only the items still lacking output).
        # A worker that dies instead leaves the job running; the sweeper resends it and the
        # step resumes after its last committed batch.
        logger.exception("scheme step %s failed", row.pk)
        _step_end(row.pk, StepRun.Status.FAILED, "An internal error stopped the step; it was logged.")
        raise
    # The step, the run it may settle and the step's job end in one transaction, so no reader
    # sees a finished run whose last job still says running.
    with transaction.atomic():
        if job.cancel_requested:
            _step_end(row.pk, StepRun.Status.FAILED, "Cancelled.")
            job_services.job_finish(job=job, result={"cancelled": True})
            return
        row.refresh_from_db(fields=["counts"])
        failed = int(row.counts.get("items_failed") or 0)
        _step_end(row.pk, StepRun.Status.PARTIAL if failed else StepRun.Status.SUCCEEDED)
        job_services.job_finish(job=job, result={k: v for k, v in row.counts.items() if k != "errors"})


@transaction.atomic
def scheme_run_cancel(*, run: SchemeRun) -> SchemeRun:
    """Ask the run's jobs to stop; pending steps are skipped and the run ends `cancelled`."""
    run = SchemeRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in SchemeRun.ACTIVE:
        raise ConflictError(f"Run {run.pk} is {run.status}; only pending or running runs can be cancelled.")
    jobs = [run.job_id, *StepRun.objects.filter(run=run).values_list("job_id", flat=True)]
    for job in Job.objects.filter(pk__in=[j for j in jobs if j]).exclude(status__in=Job.FINISHED):
        job_services.job_cancel(job=job)
    StepRun.objects.filter(run=run, status__in=[StepRun.Status.PENDING, StepRun.Status.RUNNING]).update(
        status=StepRun.Status.SKIPPED, error="Cancelled.", updated_at=timezone.now()
    )
    run.status = SchemeRun.Status.CANCELLED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run
