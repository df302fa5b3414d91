"""Applying a head tagger: stored vectors × head → one `tagger` tag set per (item, version)
(docs/taggers.md#applying).

`tagger_run` takes a query string, item ids or a MediaItem queryset (datasets and intake pass
theirs) and starts a `taggers.score` job (queue `ml_cpu`). The job scores the space's matrix
cache batch by batch; each batch replaces its items' sets (slot `<tagger>@<version>`) in one
transaction through the tags app's one writer, fenced with the job's progress and cursor, so a
re-run or a retried batch writes nothing new. Stored: every score ≥ the tagger's
`stored_threshold`, at most MAX_PER_ITEM per item, confidence in 1/10000. Tags a person removed
from a tagger set stay removed. Curated sets are never written here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.db.models import QuerySet

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.taggers.models import SCALE, Tagger, TaggerVersion
from apps.taggers.services import versions
from apps.taggers.services.matrix import matrix_load
from apps.tags import slots
from apps.tags.models import Tag, TagAssignment, TagSet
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write
from apps.tags.services.operations.apply import lock_items

if TYPE_CHECKING:
    from apps.taggers.engine.artifacts import Head

logger = logging.getLogger(__name__)

SCORE_TASK = "taggers.score"
SCORE_KIND = "taggers.score"
MAX_PER_ITEM = 512
BATCH = 1000
MAX_IDS = 1_000_000  # items per run (a query or a selection)
MAX_EXPLICIT_IDS = 100_000  # ids given one by one
TAGGER = TagSet.Kind.TAGGER
Via = TagAssignment.Via


def version_slot(version: TaggerVersion) -> str:
    return slots.tagger(model=version.tagger.name, version=str(version.number))


def _target_ids(
    *, query: str | None, ids: Sequence[int] | None, items: QuerySet[MediaItem] | None
) -> list[int]:
    if query is None and ids is None and items is None:
        raise DomainError(
            "Say which items to tag: a query, item ids or a selection.", code="taggers.no_target"
        )
    base = MediaItem.objects.all() if items is None else items
    if ids is not None:
        base = base.filter(pk__in=_explicit(ids))
    if query:
        from apps.search.query import QueryError, search_queryset

        try:
            base = base.filter(pk__in=search_queryset(q=query, viewer=None).values("pk"))
        except QueryError as exc:
            raise DomainError(f"The query is invalid: {exc}", code="taggers.bad_query") from exc
    found = list(base.order_by("pk").values_list("pk", flat=True)[: MAX_IDS + 1])
    if len(found) > MAX_IDS:
        raise DomainError(f"At most {MAX_IDS:,} items per run; narrow the query.", code="taggers.too_many")
    return [int(i) for i in found]


def _explicit(ids: Sequence[int]) -> list[int]:
    """Explicit item ids: at most MAX_EXPLICIT_IDS whole numbers (400 otherwise)."""
    if len(ids) > MAX_EXPLICIT_IDS:
        raise DomainError(
            f"At most {MAX_EXPLICIT_IDS:,} item ids per run ({len(ids):,} given); use a query or a "
            "dataset for more.",
            code="taggers.too_many",
            details={"limit": MAX_EXPLICIT_IDS, "given": len(ids)},
        )
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise DomainError("Item ids must be positive whole numbers.", code="taggers.bad_ids")
    return list(ids)


def _version_to_run(tagger: Tagger, number: int | None) -> TaggerVersion:
    if tagger.kind != Tagger.Kind.EMBEDDING_HEAD:
        raise DomainError(
            f"Tagger {tagger.name} is a {tagger.get_kind_display()}; run it from a tagging scheme.",
            code="taggers.kind_not_runnable",
        )
    if number is None:
        if tagger.active_version is None:
            raise ConflictError(
                f"Tagger {tagger.name} has no active version; train it first.",
                code="taggers.no_active_version",
            )
        return tagger.active_version
    version = TaggerVersion.objects.filter(tagger=tagger, number=number).first()
    if version is None or version.status != TaggerVersion.Status.READY:
        raise ConflictError(
            f"Tagger {tagger.name} has no ready version {number}.", code="taggers.version_not_ready"
        )
    return version


def tagger_run(
    *,
    tagger: Tagger,
    query: str | None = None,
    ids: Sequence[int] | None = None,
    items: QuerySet[MediaItem] | None = None,
    version: int | None = None,
    actor: Any = None,
) -> Job:
    """Start a scoring job for the active (or given ready) version over the target items."""
    if ids is not None:
        _explicit(ids)  # before anything else: a list too long is refused at once
    chosen = _version_to_run(tagger, version)
    target = _target_ids(query=query, ids=ids, items=items)
    return job_services.job_start(
        kind=SCORE_KIND,
        task=SCORE_TASK,
        params={"version": chosen.pk, "item_ids": target},
        created_by=actor,
        total=len(target),
        title=f"Run {tagger.name} v{chosen.number} on {len(target)} items",
    )


def predictions_for(head: Head, vectors: np.ndarray, floor: float) -> list[list[tuple[int, int]]]:
    """Per row: (tag id, confidence in 1/10000) with score ≥ floor, best first, ≤ MAX_PER_ITEM."""
    scores = head.score(vectors)
    keys = np.asarray(head.keys, dtype=np.int64)
    out: list[list[tuple[int, int]]] = []
    for row in scores:
        hits = np.flatnonzero(row >= floor)
        if hits.size > MAX_PER_ITEM:
            hits = hits[np.argsort(-row[hits], kind="stable")[:MAX_PER_ITEM]]
        confidence = np.clip(np.rint(row[hits] * SCALE), 0, SCALE).astype(np.int64)
        out.append(list(zip(keys[hits].tolist(), confidence.tolist(), strict=True)))
    return out


@dataclass(frozen=True)
class Replaced:
    """What `sets_replace` wrote: assignment changes and tagger sets it created."""

    changes: int
    sets_created: int


def _sets(
    tagger: Tagger, version: TaggerVersion, slot: str, item_ids: Sequence[int]
) -> tuple[dict[int, int], int]:
    """The items' tagger sets in `slot` (created when missing), row-locked: item → set id."""
    lookup = {
        "media_item_id__in": list(item_ids),
        "kind": TAGGER,
        "vocabulary_id": tagger.vocabulary_id,
        "slot": slot,
    }
    existing = set(TagSet.objects.filter(**lookup).values_list("media_item_id", flat=True))
    missing = [i for i in item_ids if i not in existing]
    TagSet.objects.bulk_create(
        [
            TagSet(
                media_item_id=i, kind=TAGGER, vocabulary_id=tagger.vocabulary_id, slot=slot,
                tagger_model=tagger.name[:100], tagger_version=str(version.number),
                stored_threshold=round(float(tagger.stored_threshold) * SCALE),
                origin_label=f"tagger {slot}"[:200],
            )
            for i in missing
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )  # fmt: skip
    sets = dict(
        TagSet.objects.select_for_update().filter(**lookup).order_by("pk").values_list("media_item_id", "pk")
    )
    return sets, len(missing)


def sets_replace(
    *,
    tagger: Tagger,
    version: TaggerVersion,
    wanted: Mapping[int, Sequence[tuple[int, int]]],
    slot: str | None = None,
    actor_id: int | None = None,
) -> Replaced:
    """Make each item's tagger set of this version (`slot`, default `<tagger>@<version>`) hold
    exactly `wanted` ({item: [(tag id, confidence in 1/10000), …] best first}), in the caller's
    transaction: predictions that went away are deleted, a changed confidence is deleted and
    inserted again, and a row a person removed (DELETED) stays removed. The one path of heads
    (`taggers.score`) and scheme steps (`taggers.wd`), docs/taggers.md#applying.

    Lock order (docs/taggers.md#applying): the items, then their sets, then (in
    `assignments_write`) the tags; the tags must exist already (create them before calling)."""
    ids = sorted(wanted)
    if not ids:
        return Replaced(0, 0)
    lock_items(ids)
    sets, created = _sets(tagger, version, slot or version_slot(version), ids)
    rows: dict[int, dict[int, tuple[int, int | None]]] = {s: {} for s in sets.values()}
    for set_id, tag_id, state, confidence in TagAssignment.objects.filter(
        tagset_id__in=list(sets.values())
    ).values_list("tagset_id", "tag_id", "state", "confidence"):
        rows[set_id][tag_id] = (state, confidence)
    first: list[Transition] = []
    again: list[Transition] = []  # rows whose confidence changed: removed, then inserted anew
    for item_id in ids:
        set_id = sets[item_id]
        have = rows[set_id]
        want: dict[int, tuple[int, int]] = {}
        for tag_id, confidence in wanted[item_id]:
            if tag_id not in want:  # two names of one tag: the first (best) wins
                want[tag_id] = (len(want), confidence)
        for tag_id, (state, confidence) in have.items():
            if state == CURRENT and (tag_id not in want or want[tag_id][1] != confidence):
                first.append(Transition(set_id, tag_id, item_id, CURRENT, ABSENT))
        for tag_id, (position, confidence) in want.items():
            row = have.get(tag_id)
            if row is not None and row[0] != CURRENT:
                continue  # a person removed it from this set: it stays removed
            insert = Transition(
                set_id, tag_id, item_id, ABSENT, CURRENT,
                position=position, via=Via.TAGGER, confidence=confidence,
            )  # fmt: skip
            if row is None:
                first.append(insert)
            elif row[1] != confidence:
                again.append(insert)
    changes = 0
    for transitions in (first, again):
        if transitions:
            changes += assignments_write(
                transitions, kind=TAGGER, operation_id=None, actor_id=actor_id
            ).changes
    return Replaced(changes, created)


def batch_write(
    *, version: TaggerVersion, item_ids: Sequence[int], predicted: Sequence[Sequence[tuple[int, int]]]
) -> int:
    """Make the items' sets of this version equal `predicted` (caller's transaction); returns
    the assignment changes written (0 on a re-run)."""
    wanted = dict(zip(item_ids, predicted, strict=True))
    return sets_replace(tagger=version.tagger, version=version, wanted=wanted).changes


def score_items(*, version: TaggerVersion, item_ids: Sequence[int]) -> dict[str, int]:
    """Score and write now (no job): for small selections and tests. Same path as the job."""
    head = versions.version_head(version)
    space = version.tagger.embedding_space
    assert space is not None
    matrix = matrix_load(space=space)
    return _score(version, head, matrix, list(item_ids), None)


def known_tags(version: TaggerVersion, head: Head) -> set[int]:
    """The head's tags its vocabulary still holds (read before any lock): predictions of a tag
    deleted since training are dropped and counted (`tags_unknown`), never written."""
    keys = [int(k) for k in head.keys]
    known: set[int] = set()
    for start in range(0, len(keys), 5000):
        known.update(
            Tag.objects.filter(
                pk__in=keys[start : start + 5000], vocabulary_id=version.tagger.vocabulary_id
            ).values_list("pk", flat=True)
        )
    return known


def _score(
    version: TaggerVersion, head: Head, matrix: Any, item_ids: list[int], job: Job | None
) -> dict[str, int]:
    ids = np.asarray(matrix.ids)
    wanted = np.asarray(sorted(set(item_ids)), dtype=np.int64)
    rows = np.searchsorted(ids, wanted)
    present = (
        (rows < ids.size) & (ids[np.minimum(rows, max(ids.size - 1, 0))] == wanted) if ids.size else rows < 0
    )
    counts = {"scored": 0, "changes": 0, "tags_unknown": 0, "missing_embedding": int((~present).sum())}
    if job is not None:
        counts = {
            **counts,
            **{k: int(v) for k, v in job.counts.items() if k in counts and k != "missing_embedding"},
        }
    cursor = int(job.result.get("cursor", 0)) if job is not None else 0
    todo = [
        (int(i), int(r))
        for i, r, p in zip(wanted.tolist(), rows.tolist(), present.tolist(), strict=True)
        if p and i > cursor
    ]
    floor = float(version.tagger.stored_threshold)
    known = known_tags(version, head)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        vectors = np.asarray(matrix.vectors[[r for _i, r in batch]], dtype=np.float32)
        predicted = predictions_for(head, vectors, floor)
        kept = [[(t, c) for t, c in p if t in known] for p in predicted]
        counts["tags_unknown"] += sum(len(p) for p in predicted) - sum(len(p) for p in kept)
        predicted = kept
        with transaction.atomic():
            alive = set(MediaItem.objects.filter(pk__in=[i for i, _r in batch]).values_list("pk", flat=True))
            keep = [(i, p) for (i, _r), p in zip(batch, predicted, strict=True) if i in alive]
            counts["changes"] += batch_write(
                version=version, item_ids=[i for i, _p in keep], predicted=[p for _i, p in keep]
            )
            counts["scored"] += len(keep)
            if job is not None:
                job_services.job_fence(
                    job=job, counts=counts, progress_done=counts["scored"] + counts["missing_embedding"],
                    result={"cursor": batch[-1][0]},
                )  # fmt: skip
        if job is not None:
            job = job_services.job_progress(job=job)
            if job.cancel_requested:
                break
    return counts


def covered_ids(tagger: Tagger, embedded: np.ndarray) -> list[int]:
    """The items a tagger covers: those with a vector in its space (`embedded`, the matrix
    cache's ids), narrowed by its `scope.query` when it has one (read in the worker)."""
    ids = [int(i) for i in embedded.tolist()]
    query = str((tagger.scope or {}).get("query") or "").strip()
    if not query or not ids:
        return ids
    from apps.search.query import QueryError, search_queryset

    try:
        matched = search_queryset(q=query, viewer=None)
    except QueryError as exc:
        raise DomainError(f"The tagger's scope query is invalid: {exc}", code="taggers.bad_query") from exc
    kept: list[int] = []
    for start in range(0, len(ids), 5000):
        window = ids[start : start + 5000]
        kept.extend(matched.filter(pk__in=window).order_by("pk").values_list("pk", flat=True))
    return kept


def rescore_start(*, tagger: Tagger, version: TaggerVersion) -> Job:
    """Queue a `taggers.score` job of `version` over every item the tagger covers (the ids are
    read by the job, not here: a promotion stays O(1)); docs/taggers.md#re-scoring-on-promotion."""
    return job_services.job_start(
        kind=SCORE_KIND,
        task=SCORE_TASK,
        params={"version": version.pk, "item_ids": None, "rescore": True},
        title=f"Re-score {tagger.name} v{version.number} (promoted)",
    )


def score_run(*, job_id: int) -> None:
    """Job body of `taggers.score`."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    try:
        version = TaggerVersion.objects.select_related("tagger__embedding_space").get(
            pk=int(job.params["version"])
        )
        head = versions.version_head(version)
        space = version.tagger.embedding_space
        if space is None or version.space_id != space.pk:
            raise ConflictError(
                "The tagger's embedding space changed since this version was trained.",
                code="taggers.space_mismatch",
            )
        matrix = matrix_load(space=space)
        if job.params.get("item_ids") is None:  # a re-score after promotion: what the tagger covers
            target = covered_ids(version.tagger, np.asarray(matrix.ids))
            job = job_services.job_progress(job=job, total=len(target))
        else:
            target = list(job.params["item_ids"])
        counts = _score(version, head, matrix, target, job)
    except TaggerVersion.DoesNotExist:
        job_services.job_fail(job=job, code="taggers.version_gone", message="The tagger version was deleted.")
        return
    except DomainError as err:
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    job.refresh_from_db()
    job_services.job_finish(job=job, result={**job.result, **counts})
