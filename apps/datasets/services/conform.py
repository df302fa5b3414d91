"""Conform: turn members that fail the image rules into derived items that pass them
(docs/datasets.md#conform).

For each failing member a plan says what would be done (crop to the target aspect around the
focus, scale to the size rule or to the nearest bucket, convert format, mode and bit depth,
flatten alpha) as a transform recipe (apps/media/services/recipes.py); the job runs those
recipes in batches through `media_item_transform_batches` (which records parent and recipe on the
result) and substitutes the results in the dataset: the originals excluded and the derived items
added explicitly, in the transaction that writes the batch's results and records its outcomes.
An item that would need more upscaling than allowed, or a rule no recipe can meet, is reported
and left alone, never silently upscaled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max, Q, QuerySet

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets import selectors
from apps.datasets.models import Dataset, Requirements, Subset
from apps.datasets.services.conform_plan import (  # noqa: F401
    IMAGE_RULES,
    ConformError,
    Options,
    Plan,
    Shape,
    image_failures,
    options_clean,
    plan_item,
    result_failures,
)
from apps.datasets.services.members import members_edit
from apps.jobs import services as job_services
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem
from apps.media.services.transform_batches import Batch, media_item_transform_batches
from apps.media.services.transforms import Transformed

JOB_KIND = "datasets.conform"
TASK_NAME = "datasets.conform"
MAX_ITEMS = 100_000
BATCH = 100  # candidates read per step of the walk
logger = logging.getLogger(__name__)


def candidates(*, dataset: Dataset, req: Requirements, viewer: Any = None) -> QuerySet[MediaItem]:
    """Members conform would touch: failing an image rule (the validation's own SQL filters),
    or carrying alpha to flatten. Empty when no such rule is set."""
    members = selectors.dataset_members(dataset=dataset, viewer=viewer)
    fails: Q | None = None
    for check in selectors.requirement_checks(dataset=dataset, members=members):
        if check.code in IMAGE_RULES:
            fails = check.fails if fails is None else fails | check.fails
    if req.alpha == Requirements.Alpha.FLATTEN:
        fails = Q(has_alpha=True) if fails is None else fails | Q(has_alpha=True)
    return members.none() if fails is None else members.filter(fails)


def _requirements(dataset: Dataset) -> Requirements:
    req = Requirements.objects.filter(dataset=dataset).first()
    if req is None:
        raise DomainError("This dataset has no requirements to conform to.", code="datasets.no_requirements")
    return req


def conform_preview(
    *,
    dataset: Dataset,
    options: dict[str, Any] | None = None,
    after: int = 0,
    limit: int = 50,
    viewer: Any = None,
) -> dict[str, Any]:
    """The candidates (failing members) in id order, `limit` from `after`, each with its plan;
    and how many candidates there are (one COUNT)."""
    opts = options_clean(options)
    req = _requirements(dataset)
    rows = candidates(dataset=dataset, req=req, viewer=viewer)
    page = list(rows.filter(pk__gt=after).order_by("pk")[: limit + 1])
    plans = [plan_item(item=item, req=req, opts=opts).as_dict() for item in page[:limit]]
    return {
        "dataset": dataset.pk,
        "options": opts.as_dict(),
        "candidates": rows.count(),
        "items": plans,
        "next_after": page[limit - 1].pk if len(page) > limit else None,
    }


def conform_start(*, dataset: Dataset, options: dict[str, Any] | None = None, actor: Any = None) -> Job:
    """Queue the conform job: it walks the candidates at run time by id, up to the highest
    candidate id now (results get higher ids and are never visited). One conform job per
    dataset at a time: 409 while one is queued or running."""
    opts = options_clean(options)
    req = _requirements(dataset)
    with transaction.atomic():
        # Two starts for one dataset take turns on its row, so only one sees no job running.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).values_list("pk", flat=True).first()
        busy = (
            Job.objects.filter(
                kind=JOB_KIND, status__in=(Job.Status.QUEUED, Job.Status.RUNNING), params__dataset=dataset.pk
            )
            .values_list("pk", "status")
            .first()
        )
        if busy is not None:
            raise ConflictError(
                f"Conform job {busy[0]} for this dataset is still {busy[1]}; wait for it to finish "
                "or cancel it before starting another.",
                code="datasets.conform_running",
                details={"job": busy[0]},
            )
        rows = candidates(dataset=dataset, req=req, viewer=actor).order_by()
        total = rows.count()
        if not total:
            raise DomainError(
                "No member fails an image rule: nothing to conform.", code="datasets.nothing_to_conform"
            )
        if total > MAX_ITEMS:
            raise DomainError(
                f"More than {MAX_ITEMS:,} members to conform; conform a subset of them at a time.",
                code="datasets.too_many_items",
            )
        max_id = rows.order_by("-pk").values_list("pk", flat=True).first()
        return job_services.job_start(
            kind=JOB_KIND,
            task=TASK_NAME,
            params={
                "dataset": dataset.pk,
                "max_id": max_id,
                "options": opts.as_dict(),
                "subject": {"label": f"dataset {dataset.name}"},
            },
            created_by=actor,
            total=total,
            title=f"Conform {dataset.name}",
        )


def _swap(owner: Dataset | Subset, original: int, derived: int) -> None:
    # Through members_edit, so the dataset lock and the stored explicit counts stay right.
    members_edit(owner=owner, action="exclude", item_ids=[original])
    members_edit(owner=owner, action="add", item_ids=[derived])


def substitute(
    *,
    dataset: Dataset,
    original: MediaItem,
    derived: MediaItem,
    viewer: Any = None,
    subsets: list[Subset] | None = None,
) -> None:
    """Exclude the original and add the derived item, in the dataset and in each of its subsets
    the original belongs to (call inside a transaction; `subsets`: the dataset's, if known)."""
    _swap(dataset, original.pk, derived.pk)
    if subsets is None:
        subsets = list(Subset.objects.filter(dataset=dataset).order_by("pk"))
    for subset in subsets:
        if selectors.subset_members(subset=subset, viewer=viewer).filter(pk=original.pk).exists():
            _swap(subset, original.pk, derived.pk)


@dataclass
class _Run:
    """What every item of one run shares."""

    job: Job
    dataset: Dataset
    req: Requirements
    opts: Options
    user: Any
    subsets: list[Subset]


def _label(item: MediaItem) -> str:
    return f"item {item.pk}"


def _outcome(item: MediaItem, status: str, **kwargs: Any) -> job_services.ItemOutcome:
    # seq is the item's id: the walk is in id order, and a resumed job starts after the last.
    return job_services.ItemOutcome(seq=item.pk, input=_label(item), status=status, **kwargs)


def _failed(run: _Run, item: MediaItem, exc: BaseException) -> job_services.ItemOutcome:
    if isinstance(exc, DomainError):
        err = exc
    else:
        logger.error("conform job %s: item %s failed", run.job.pk, item.pk, exc_info=exc)
        err = DomainError(
            "An internal error stopped this item; it was logged.", code="datasets.internal_error"
        )
    return _outcome(item, JobItem.Status.FAILED, error=err)


def _judge(run: _Run, item: MediaItem, plan: Any, outcome: Transformed | None) -> Any:
    """One candidate's outcome without its substitution: an ItemOutcome (skipped, failed), or
    the transform's result to substitute. `plan`: what plan_item gave (or raised); `outcome`:
    the transform's result (or what it raised) when the plan called for one."""
    if isinstance(plan, Exception):
        return _failed(run, item, plan)
    if not plan.fails:
        return _outcome(item, JobItem.Status.SKIPPED)  # passes the rules now (changed meanwhile)
    if plan.problem is not None:
        return _outcome(item, JobItem.Status.FAILED, error=plan.problem)
    if isinstance(outcome, Exception) or outcome is None:
        return _failed(run, item, outcome or RuntimeError("no transform outcome"))
    left = result_failures(run.req, outcome.item)
    if left:
        err = ConformError(
            f"The result (item {outcome.item.pk}, {outcome.item.width}×{outcome.item.height}) "
            f"still fails {', '.join(left)}; the original was left in the dataset.",
            code="datasets.result_fails",
            details={"rules": left, "result": outcome.item.pk},
        )
        return _outcome(item, JobItem.Status.FAILED, error=err)
    return outcome


def _swaps(run: _Run, swaps: list[tuple[MediaItem, MediaItem]]) -> None:
    """Substitute each (original, derived) in the dataset and its subsets: set-based (one
    exclusion and one addition per owner) unless an item of the batch is both an original and a
    result, where only the one-by-one order gives the one-by-one answer."""
    originals = [o.pk for o, _ in swaps]
    derived = list(dict.fromkeys(d.pk for _, d in swaps))
    if len(set(originals)) != len(originals) or set(originals) & set(derived):
        for original, result in swaps:
            substitute(
                dataset=run.dataset, original=original, derived=result, viewer=run.user, subsets=run.subsets
            )
        return
    members_edit(owner=run.dataset, action="exclude", item_ids=originals)
    members_edit(owner=run.dataset, action="add", item_ids=derived)
    for subset in run.subsets:
        inside = set(
            selectors.subset_members(subset=subset, viewer=run.user)
            .filter(pk__in=originals)
            .values_list("pk", flat=True)
        )
        pairs = [(o.pk, d.pk) for o, d in swaps if o.pk in inside]
        if pairs:
            members_edit(owner=subset, action="exclude", item_ids=[o for o, _ in pairs])
            members_edit(owner=subset, action="add", item_ids=list(dict.fromkeys(d for _, d in pairs)))


def _conform_record(run: _Run, plans: dict[int, Any], batch: Batch) -> None:
    """Inside the transaction of a batch of transform results: substitute the results and
    record every candidate of the batch (one `job_items_record`), so a batch commits as a unit
    (docs/datasets.md#conform). An error here fails the batch, which then runs again one
    candidate at a time (apps/media/services/transform_batches.py)."""
    judged = [(item, _judge(run, item, plans[item.pk], outcome)) for item, outcome in batch]
    results = [(item, j) for item, j in judged if not isinstance(j, job_services.ItemOutcome)]
    outcomes = {item.pk: j for item, j in judged if isinstance(j, job_services.ItemOutcome)}
    if results:
        # Lock order: the dataset row before its member rows (docs/datasets.md#concurrency).
        if not Dataset.objects.select_for_update().filter(pk=run.dataset.pk).values_list("pk").first():
            gone = DomainError("The dataset was deleted.", code="datasets.not_found")
            for item, _ in results:
                outcomes[item.pk] = _outcome(item, JobItem.Status.FAILED, error=gone)
            results = []
        members = set(
            selectors.dataset_members(dataset=run.dataset, viewer=run.user)
            .filter(pk__in=[item.pk for item, _ in results])
            .values_list("pk", flat=True)
        )
        swaps = []
        for item, result in results:
            if item.pk not in members:
                outcomes[item.pk] = _outcome(item, JobItem.Status.SKIPPED)  # removed or excluded meanwhile
                continue
            swaps.append((item, result.item))
            status = JobItem.Status.DUPLICATE if result.duplicate else JobItem.Status.CREATED
            outcomes[item.pk] = _outcome(item, status, object_id=result.item.pk)
        if swaps:
            _swaps(run, swaps)
    job_services.job_items_record(job=run.job, outcomes=[outcomes[item.pk] for item, _ in batch])


def _plan(run: _Run, item: MediaItem) -> Any:
    try:
        return plan_item(item=item, req=run.req, opts=run.opts)
    except Exception as exc:
        return exc


def _needs_transform(plan: Any) -> bool:
    return not isinstance(plan, Exception) and bool(plan.fails) and plan.problem is None


def _conform_batch(run: _Run, batch: list[MediaItem]) -> int | None:
    """Conform a walk step in id order: the candidates go through `media_item_transform_batches`
    (those the plan leaves alone pass through), whose pixel work runs on every core; each batch
    of results is written, substituted and recorded in one transaction (`_conform_record`).
    Returns the id of the last item recorded (None if cancelled before the first)."""
    plans = {item.pk: _plan(run, item) for item in batch}
    todo = ((item, plans[item.pk].recipe if _needs_transform(plans[item.pk]) else None) for item in batch)
    results = media_item_transform_batches(
        todo,
        added_by=run.user,
        job_id=run.job.pk,
        record=lambda done: _conform_record(run, plans, done),
    )
    last = None
    try:
        for done in results:
            last = done[-1][0].pk
            if run.job.cancel_requested:  # job_items_record refreshes it
                break
    finally:
        results.close()
    return last


def conform_run(*, job_id: int) -> None:
    """Job body: walk the candidates by id (keyset, BATCH at a time, up to the highest id at the
    start) and conform each; the walk re-reads membership and the rules for every batch, and a
    resumed job starts after the last recorded item."""
    from django.contrib.auth import get_user_model

    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    dataset = Dataset.objects.filter(pk=job.params["dataset"]).first()
    req = Requirements.objects.filter(dataset_id=job.params["dataset"]).first()
    if dataset is None or req is None:
        job_services.job_fail(job=job, code="datasets.not_found", message="The dataset was deleted.")
        return
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    run = _Run(
        job=job,
        dataset=dataset,
        req=req,
        opts=options_clean(job.params.get("options")),
        user=user,
        subsets=list(Subset.objects.filter(dataset=dataset).order_by("pk")),
    )
    # Jobs queued before the walk stored their ids instead: walk up to the highest of them.
    max_id = int(job.params.get("max_id") or max(job.params.get("ids") or [0]))
    cursor = JobItem.objects.filter(job=job).aggregate(last=Max("seq"))["last"] or 0
    walked = True
    while walked and not job.cancel_requested:
        rows = candidates(dataset=dataset, req=req, viewer=user).filter(pk__gt=cursor, pk__lte=max_id)
        batch = list(rows.order_by("pk")[:BATCH])
        walked = bool(batch)
        cursor = _conform_batch(run, batch) or cursor
    counts = Job.objects.filter(pk=job.pk).values_list("counts", flat=True).get()
    if not job.cancel_requested:
        # Members that left or came to pass the rules before their batch are not visited.
        job_services.job_progress(job=job, total=sum(counts.values()))
    job_services.job_finish(job=job, result={"counts": counts, "dataset": dataset.pk})
