"""The embed job (`taggers.embed`, queue `ml`): items' pixels → one fp16 vector per item and
space (docs/taggers.md#embed-jobs).

Batches of BAGGINTAG_ML_BATCH item ids in id order; the next batch is decoded by a thread pool
while the model embeds the current one. Items that already have a vector are skipped, so a job
that stopped (worker killed, cancelled, failed) resumes where it was without duplicates: the
rows, the job's progress and its cursor are written in one fenced transaction per batch. A
weights file whose sha256 differs from the space's fails the job before any row is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet

from apps.core.exceptions import DomainError, UnprocessableError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.taggers import conf
from apps.taggers.engine import cache, clip
from apps.taggers.engine.base import EmbeddingSpaceMismatch
from apps.taggers.models import EmbeddingSpace, ImageEmbedding
from apps.taggers.services.provisioning import model_root

logger = logging.getLogger(__name__)

EMBEDDABLE = (MediaItem.Kind.IMAGE, MediaItem.Kind.FRAME)


def vector_bytes(vector: Any, dim: int) -> bytes:
    """A vector as stored: exactly dim × 2 bytes of little-endian fp16."""
    blob = vector.astype("<f2").tobytes()
    if len(blob) != dim * 2:
        raise EmbeddingSpaceMismatch(f"The model made {len(blob) // 2}-d vectors; the space is {dim}-d.")
    return bytes(blob)


def weights_check(space: EmbeddingSpace) -> Path:
    """The space's weights are provisioned and hash to its `weights_sha256` (else a DomainError)."""
    ref = clip.parse_ref(space.model_ref)
    root = model_root()
    clip.require_provisioned(ref, root, model=space.name)
    actual = clip.file_sha256(root / ref.weights)
    if actual != space.weights_sha256:
        raise EmbeddingSpaceMismatch(
            f"The weights at {ref.weights} hash to {actual[:12]}…, but space {space.name!r} was made with "
            f"{space.weights_sha256[:12]}…: new weights need a new embedding space. Nothing was written.",
            details={"expected": space.weights_sha256, "actual": actual},
        )
    return root


def backend_for(space: EmbeddingSpace) -> clip.ClipModel:
    """The loaded model of a space (cached per worker process), weights checked first."""
    root = weights_check(space)
    ref = clip.parse_ref(space.model_ref)
    device = clip.device_default()

    def load() -> clip.ClipModel:
        model = clip.ClipModel()
        model.load(
            ref,
            root,
            preprocess_cfg=space.preprocess_cfg,
            expected_sha256=space.weights_sha256,
            device=device,
            model=space.name,
        )
        return model

    key = ("clip_embed", f"{space.weights_sha256}:{space.preprocess_sha256}", device)
    backend: clip.ClipModel = cache.backend_get(key, load)
    return backend


def candidates(params: dict[str, Any]) -> QuerySet[MediaItem]:
    """The items a job covers: images and frames of its query and/or ids (all when neither)."""
    items = MediaItem.objects.filter(kind__in=EMBEDDABLE)
    if params.get("query"):
        from apps.search.query import search_queryset

        items = items.filter(pk__in=search_queryset(q=params["query"], viewer=None).values("pk"))
    if params.get("item_ids"):
        items = items.filter(pk__in=[int(i) for i in params["item_ids"]])
    return items


def missing(space: EmbeddingSpace, items: QuerySet[MediaItem]) -> QuerySet[MediaItem]:
    return items.exclude(Exists(ImageEmbedding.objects.filter(space_id=space.pk, item_id=OuterRef("pk"))))


@dataclass
class Decoded:
    item_id: int
    tensor: Any = None
    error: DomainError | None = None


def _decode(backend: clip.ClipModel, item_id: int, key: str) -> Decoded:
    try:
        with default_storage.open(key, "rb") as handle:
            return Decoded(item_id, backend.preprocess(handle))
    except FileNotFoundError:
        return Decoded(
            item_id, error=UnprocessableError("The stored file is missing.", code="media.file_missing")
        )
    except (OSError, ValueError, SyntaxError) as exc:  # PIL: unreadable or truncated data
        return Decoded(
            item_id,
            error=UnprocessableError(f"The image could not be decoded ({exc}).", code="media.corrupt"),
        )


class _Run:
    """One attempt of an embed job."""

    def __init__(self, job: Job, space: EmbeddingSpace, backend: clip.ClipModel) -> None:
        self.job, self.space, self.backend = job, space, backend
        self.batch = conf.ml_batch()
        workers = conf.decode_workers() or clip.threads_default()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        self.failed = job_services.job_done_seqs(job=job)
        self.todo = missing(space, candidates(job.params))
        self.counts: dict[str, int] = dict(job.counts)

    def _next(self, cursor: int) -> list[tuple[int, str]]:
        rows = self.todo.filter(pk__gt=cursor).order_by("pk").values_list("pk", "storage_key")
        picked: list[tuple[int, str]] = []
        for pk, key in rows[: self.batch + len(self.failed)]:
            if pk not in self.failed:
                picked.append((int(pk), str(key)))
            if len(picked) == self.batch:
                break
        return picked

    def _submit(self, rows: Sequence[tuple[int, str]]) -> list[Future[Decoded]]:
        return [self.pool.submit(_decode, self.backend, pk, key) for pk, key in rows]

    def _write(self, decoded: list[Decoded], cursor: int) -> None:
        good = [d for d in decoded if d.error is None]
        vectors: Any = self.backend.embed([d.tensor for d in good]) if good else []
        rows = [
            ImageEmbedding(item_id=d.item_id, space_id=self.space.pk, vector=vector_bytes(v, self.space.dim))
            for d, v in zip(good, vectors, strict=True)
        ]
        for bad in (d for d in decoded if d.error is not None):
            job_services.job_item_record(
                job=self.job,
                seq=bad.item_id,
                input=f"item {bad.item_id}",
                status="failed",
                object_id=bad.item_id,
                error=bad.error,
                counts_progress=False,
            )
            self.failed.add(bad.item_id)
        with transaction.atomic():
            self.counts = {**self.job.counts, "embedded": self.counts.get("embedded", 0) + len(rows)}
            done = sum(self.counts.values())
            job_services.job_fence(
                job=self.job, counts=self.counts, progress_done=done, result={"cursor": cursor}
            )
            alive = set(
                MediaItem.objects.filter(pk__in=[r.item_id for r in rows]).values_list("pk", flat=True)
            )
            ImageEmbedding.objects.bulk_create([r for r in rows if r.item_id in alive], ignore_conflicts=True)
            EmbeddingSpace.objects.filter(pk=self.space.pk).update(
                embedding_count=F("embedding_count") + len(alive)
            )
        self.job.counts, self.job.progress_done = self.counts, done

    def _check_cpu_estimate(self, seconds: float, done: int) -> None:
        """On a host without CUDA, refuse a job whose estimate (from the first batch) is over
        BAGGINTAG_CPU_JOB_LIMIT_S; what was embedded stays and a GPU worker resumes it."""
        if self.backend.device != "cpu" or done <= 0:
            return
        remaining = max(0, self.job.progress_total - self.job.progress_done)
        estimate = seconds / done * remaining
        limit = conf.cpu_job_limit_s()
        if estimate > limit:
            raise DomainError(
                f"Embedding the remaining {remaining} items on this CPU-only worker would take about "
                f"{estimate / 3600:.1f} h (limit {limit / 3600:.1f} h, BAGGINTAG_CPU_JOB_LIMIT_S). Run it on "
                "a worker with a GPU (queue ml), or embed a smaller query; what was embedded is kept.",
                code="taggers.cpu_job_too_long",
            )

    def run(self) -> bool:
        """Embed batch after batch; False when stopped by a cancel."""
        cursor = int(self.job.result.get("cursor", 0))
        rows = self._next(cursor)
        pending = self._submit(rows)
        first = True
        try:
            while rows:
                self.job = job_services.job_progress(job=self.job)
                if self.job.cancel_requested:
                    return False
                started = time.monotonic()
                decoded = [f.result() for f in pending]
                cursor = rows[-1][0]
                rows = self._next(cursor)
                pending = self._submit(rows)  # decoded while the model runs on this batch
                self._write(decoded, cursor)
                if first and rows:
                    first = False
                    self._check_cpu_estimate(time.monotonic() - started, len(decoded))
        finally:
            for future in pending:
                future.cancel()
            self.pool.shutdown(wait=True)
        return True


def _start(job: Job, space: EmbeddingSpace) -> None:
    """Totals for the progress bar: every covered item, those already embedded count skipped."""
    items = candidates(job.params)
    total = items.count()
    if "skipped" not in job.counts:
        skipped = total - missing(space, items).count()
        job.counts = {**job.counts, "skipped": skipped}
        job_services.job_fence(job=job, counts=job.counts, progress_total=total, progress_done=skipped)
    else:
        job_services.job_fence(job=job, progress_total=total)


def embed_run(*, job_id: int) -> None:
    """Job body of `taggers.embed`: claim, check the weights, embed what is missing, finish."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    try:
        space = EmbeddingSpace.objects.get(pk=int(job.params["space"]))
        backend = backend_for(space)
        _start(job, space)
        finished = _Run(job, space, backend).run()
    except EmbeddingSpace.DoesNotExist:
        job_services.job_fail(job=job, code="taggers.space_gone", message="The embedding space was deleted.")
        return
    except DomainError as err:
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    job.refresh_from_db()
    result = {**job.result, "finished": finished}
    job_services.job_finish(job=job, result=result)
