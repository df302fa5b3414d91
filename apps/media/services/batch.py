"""Batched, parallel ingest for bulk jobs: the file work of a batch in threads, its rows at once.

`media_ingest` (ingest.py) stores one file with a handful of database round trips. A bulk job
ingests its inputs in batches instead (docs/architecture.md#ingest):

1. every input is read and spooled with its SHA-256 in a thread pool (staged file, zip member
   or URL download);
2. one query finds the batch's inputs already in the library (`sha256__in`);
3. the new files are sniffed, probed (decode at the JPEG draft, thumbnail, phash) and stored in
   the pool: Pillow, hashlib and ffmpeg release the GIL for the heavy parts, so the threads use
   every core. Same bytes twice in a batch are probed once;
4. one transaction writes the batch: the items and their sources with `bulk_create`, the
   arrival events (source tag sets), and `record` (a job's fenced per-input results).

An input that fails in steps 1–3 is an outcome with its error, as in the one-at-a-time path;
files are stored only for inputs that probed well. If step 4 raises, every file the batch
stored is deleted (but those of bytes a committed item has by then: a concurrent ingest of the
same bytes won) and the error propagates, so the caller can fall back to one input at a time
(bulk.py does); `JobSuperseded` leaves the files, which belong to the attempt that now owns the
job (same bytes, same content-addressed keys). Nothing in steps 1 and 3 touches the database.

`IngestBatch` runs the steps one call at a time, so a bulk job can pipeline its batches: the
next batch's steps 1–3 run in the pool while this one's step 4 runs on the job's thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from django.db import transaction

from apps.core.db import instances_insert
from apps.core.exceptions import DomainError
from apps.jobs.exceptions import JobSuperseded
from apps.media import conf, events
from apps.media.models import MediaItem, MediaSource
from apps.media.services import probe, storage
from apps.media.services.ingest import (
    Derived,
    IngestResult,
    Metadata,
    Origin,
    _item_new,
    source_row,
    unsupported_error,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Opener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


@dataclass
class BatchInput:
    """One input of a batch: `open` is called in a worker thread and must not use the database."""

    open: Opener
    origin: Origin
    metadata: Metadata


@dataclass
class Outcome:
    """What became of one input: `result`, or `error` (a DomainError, or an unexpected exception
    that the caller logs and reports as an internal error)."""

    input: BatchInput
    result: IngestResult | None = None
    error: BaseException | None = None


@dataclass
class _Work:
    input: BatchInput
    outcome: Outcome
    spooled: storage.Spooled | None = None
    probed: probe.Probe | None = None
    written: list[str] = field(default_factory=list)
    same_as: _Work | None = None  # an earlier input of the batch with the same bytes


Record = Callable[[list[Outcome]], None]


def ingest_threads() -> int:
    """Threads a bulk job ingests with: BAGGINTAG_INGEST_THREADS, or the CPUs this process may use."""
    configured = conf.ingest_threads()
    if configured > 0:
        return configured
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(usable))


def _submit(pool: Executor | None, fn: Callable[[_Work], None], works: list[_Work]) -> list[Future[None]]:
    """Start `fn` on each work in the pool; without one (or for one work) run it here and now."""
    if pool is None or len(works) < 2:
        for work in works:
            fn(work)
        return []
    return [pool.submit(fn, work) for work in works]


def _wait(futures: list[Future[None]], *, swallow: bool = False) -> None:
    """Wait for every future; the first error (JobSuperseded: the others are per-input outcomes)
    is raised after all have ended, unless `swallow`."""
    error: BaseException | None = None
    for future in futures:
        try:
            future.result()
        except BaseException as exc:
            error = error or exc
    futures.clear()
    if error is not None and not swallow:
        raise error


def _guarded(step: Callable[[_Work], None]) -> Callable[[_Work], None]:
    """Run `step` for one input; an exception becomes that input's outcome."""

    def run(work: _Work) -> None:
        if work.outcome.error is not None:
            return
        try:
            step(work)
        except JobSuperseded:
            raise
        except Exception as exc:  # the caller reports it per input (DomainError or internal)
            work.outcome.error = exc

    return run


@_guarded
def _spool(work: _Work) -> None:
    with work.input.open() as stream:
        work.spooled = storage.spool(stream)


@_guarded
def _probe_and_store(work: _Work) -> None:
    spooled = work.spooled
    assert spooled is not None
    sniffed = probe.sniff(spooled.head)
    if sniffed is None:
        raise unsupported_error(spooled.head)
    kind, fmt = sniffed
    probe_fn = probe.probe_image if kind == "image" else probe.probe_video
    probed = probe_fn(storage.spooled_path(spooled), fmt, thumb_size=conf.thumbnail_size())
    original = storage.original_key(spooled.sha256, probed.extension)
    try:
        if storage.store_original(original, spooled):
            work.written.append(original)
        thumb = storage.thumbnail_key(spooled.sha256)
        if probed.thumbnail is not None and storage.store_thumbnail(thumb, probed.thumbnail):
            work.written.append(thumb)
    except BaseException:
        storage.delete_keys(work.written)
        work.written.clear()
        raise
    work.probed = probed


def _source_row(item: MediaItem, work: _Work, user: Any) -> MediaSource:
    return source_row(item, work.input.origin, work.input.metadata, user)


def _already_attached(works: list[tuple[MediaItem, _Work]]) -> set[tuple[int, int, Any]]:
    """(item, job, input) of arrivals a job attempt already recorded: attaching stays idempotent."""
    keyed = [(item, w.input.origin) for item, w in works if w.input.origin.import_job_id is not None]
    if not keyed:
        return set()
    rows = MediaSource.objects.filter(
        media_item_id__in={item.pk for item, _ in keyed},
        import_job_id__in={origin.import_job_id for _, origin in keyed},
    ).values_list("media_item_id", "import_job_id", "raw_metadata")
    return {
        (item_id, job_id, raw.get("job_input"))
        for item_id, job_id, raw in rows
        if isinstance(raw, dict) and raw.get("job_input") is not None
    }


def _write_rows(works: list[_Work], existing: dict[str, MediaItem], added_by: Any) -> None:
    """Inside the batch transaction: new items, then every arrival's source row and event."""
    user = added_by if added_by is not None and added_by.is_authenticated else None
    new = [w for w in works if w.outcome.error is None and w.same_as is None and w.probed is not None]
    items = []
    for w in new:
        assert w.spooled is not None
        assert w.probed is not None
        original = storage.original_key(w.spooled.sha256, w.probed.extension)
        thumb = storage.thumbnail_key(w.spooled.sha256)
        origin, metadata = w.input.origin, w.input.metadata
        items.append(_item_new(w.spooled, w.probed, origin, metadata, added_by, None, original, thumb))
    instances_insert(items)
    for w, item in zip(new, items, strict=True):
        assert w.spooled is not None
        existing[w.spooled.sha256] = item
        w.outcome.result = IngestResult(item=item, duplicate=False)
    arrivals: list[tuple[MediaItem, _Work]] = []
    for w in works:
        if w.outcome.error is None and w.spooled is not None and w.spooled.sha256 in existing:
            item = existing[w.spooled.sha256]
            if w.outcome.result is None:
                w.outcome.result = IngestResult(item=item, duplicate=True)
            arrivals.append((item, w))
        elif w.outcome.error is None and w.same_as is not None:
            w.outcome.error = w.same_as.outcome.error  # same bytes as an input that failed
    attached = _already_attached(arrivals)
    fresh = [
        (item, w)
        for item, w in arrivals
        if (item.pk, w.input.origin.import_job_id, w.input.origin.import_seq) not in attached
    ]
    sources = [_source_row(item, w, user) for item, w in fresh]
    instances_insert(sources)
    for (item, w), source in zip(fresh, sources, strict=True):
        metadata = w.input.metadata
        events.send_item_arrived(
            item=item, source=source, tags=metadata.tags, tag_source=metadata.tag_source, actor=user
        )


def _existing_items(works: list[_Work]) -> dict[str, MediaItem]:
    shas = {w.spooled.sha256 for w in works if w.spooled is not None}
    return {item.sha256: item for item in MediaItem.objects.filter(sha256__in=shas)} if shas else {}


def _mark_repeats(works: list[_Work], existing: dict[str, MediaItem]) -> list[_Work]:
    """The inputs to probe: new bytes, each once (later inputs with the same bytes wait for it)."""
    first: dict[str, _Work] = {}
    todo = []
    for w in works:
        if w.outcome.error is not None or w.spooled is None or w.spooled.sha256 in existing:
            continue
        if w.spooled.sha256 in first:
            w.same_as = first[w.spooled.sha256]
            continue
        first[w.spooled.sha256] = w
        todo.append(w)
    return todo


class IngestBatch:
    """One batch in flight, in the steps of the module docstring: `begin` (1, in the pool),
    `probe` (2, then 3 in the pool), `commit` (4, on the calling thread). Between the calls the
    pool works on its own, so a bulk job overlaps this batch's `commit` with the next batch's
    file work (docs/architecture.md#ingest). `probe(pending=)` names the batch still to commit
    before this one: inputs with bytes it is storing are not probed twice; `commit` finds their
    item once that batch has committed (or probes them then, if it did not store them).
    A batch that is not committed must be `discard`ed."""

    def __init__(self, inputs: list[BatchInput], pool: Executor | None = None) -> None:
        self.works = [_Work(input=i, outcome=Outcome(input=i)) for i in inputs]
        self.pool = pool
        self._futures: list[Future[None]] = []
        self._existing: dict[str, MediaItem] = {}
        self._probing: list[_Work] = []
        self._deferred: list[_Work] = []

    def begin(self) -> IngestBatch:
        self._futures = _submit(self.pool, _spool, self.works)
        return self

    def probe(self, *, pending: IngestBatch | None = None) -> None:
        _wait(self._futures)
        self._existing = _existing_items(self.works)
        todo = _mark_repeats(self.works, self._existing)
        storing = pending.storing() if pending is not None else set()
        self._deferred = [w for w in todo if w.spooled is not None and w.spooled.sha256 in storing]
        self._probing = [w for w in todo if w.spooled is None or w.spooled.sha256 not in storing]
        self._futures = _submit(self.pool, _probe_and_store, self._probing)

    def storing(self) -> set[str]:
        """The SHA-256 of the new bytes this batch will store when it commits."""
        return {w.spooled.sha256 for w in (*self._probing, *self._deferred) if w.spooled is not None}

    def commit(self, *, added_by: Any = None, record: Record | None = None) -> list[Outcome]:
        """Wait for the batch's file work and write its rows in one transaction; on failure its
        files are deleted (but for JobSuperseded) and the error propagates."""
        committed = False
        try:
            _wait(self._futures)
            if self._deferred:  # the batch before this one stored them, or failed to
                self._existing.update(_existing_items(self._deferred))
                for w in self._deferred:
                    if w.spooled is not None and w.spooled.sha256 not in self._existing:
                        _probe_and_store(w)
            with transaction.atomic():
                _write_rows(self.works, self._existing, added_by)
                if record is not None:
                    record([w.outcome for w in self.works])
            committed = True
        except JobSuperseded:
            committed = True  # another attempt owns these inputs and stores the same files
            raise
        finally:
            self._end(keep_files=committed)
        return [w.outcome for w in self.works]

    def discard(self, *, keep_files: bool = False) -> None:
        """Give the batch up (a job cancelled or superseded, or the batch before it failing
        the job): wait for its file work, then delete its files unless `keep_files`."""
        try:
            _wait(self._futures, swallow=True)
        finally:
            self._end(keep_files=keep_files)

    def _end(self, *, keep_files: bool) -> None:
        if not keep_files:
            _delete_unowned([(key, w.spooled.sha256) for w in self.works if w.spooled for key in w.written])
        for w in self.works:
            if w.spooled is not None:
                storage.unspool(w.spooled)
                w.spooled = None


def media_ingest_many(
    *,
    inputs: list[BatchInput],
    added_by: Any = None,
    record: Record | None = None,
    pool: Executor | None = None,
) -> list[Outcome]:
    """Ingest a batch (see the module docstring); one Outcome per input, in order.

    `record(outcomes)` runs last inside the batch's transaction (a job's fenced results); with
    `pool` (a thread pool) the file work runs in parallel, without it one input at a time.
    """
    batch = IngestBatch(inputs, pool).begin()
    try:
        batch.probe()
    except BaseException:
        batch.discard()
        raise
    return batch.commit(added_by=added_by, record=record)


@dataclass
class DerivedInput:
    """Bytes this process made (a captured frame), hashed and measured before the batch: the
    in-memory `spooled` (with its SHA-256), `probed` (thumbnail image and phash) and the
    thumbnail already encoded as stored (`storage.thumbnail_bytes`), so the batch's own thread
    only stores and writes rows."""

    spooled: storage.Spooled
    probed: probe.Probe
    thumbnail: bytes | None
    origin: Origin
    derived: Derived


DerivedWithin = Callable[[list[IngestResult]], None]


def media_ingest_derived_many(
    *, inputs: list[DerivedInput], added_by: Any = None, within: DerivedWithin | None = None
) -> list[IngestResult]:
    """`media_ingest_derived` for a batch, in input order (docs/architecture.md#media-pipelines).

    One `sha256__in` probe; each new file (same bytes twice in the batch: once) stored with its
    thumbnail; then one transaction: the new items and every input's `MediaSource` with
    `bulk_create`, the arrival events, and `within(results)` (the caller's rows and its job's
    fenced records). If anything raises before that transaction commits, the files this call
    wrote are deleted unless a committed item owns them (a concurrent ingest of the same bytes),
    and the error propagates; `JobSuperseded` leaves them to the attempt that owns the job.
    """
    user = added_by if added_by is not None and added_by.is_authenticated else None
    shas = {i.spooled.sha256 for i in inputs}
    existing = {item.sha256: item for item in MediaItem.objects.filter(sha256__in=shas)} if shas else {}
    first: dict[str, DerivedInput] = {}
    for i in inputs:
        if i.spooled.sha256 not in existing:
            first.setdefault(i.spooled.sha256, i)
    written: list[tuple[str, str]] = []  # (key, sha256) of the files this call wrote
    committed = False
    try:
        keys: dict[str, tuple[str, str]] = {}
        for sha, i in first.items():
            original, thumb = storage.original_key(sha, i.probed.extension), storage.thumbnail_key(sha)
            keys[sha] = (original, thumb)
            if storage.store_original(original, i.spooled):
                written.append((original, sha))
            if i.thumbnail is not None and storage.store_bytes(thumb, i.thumbnail):
                written.append((thumb, sha))
        with transaction.atomic():
            items = [
                _item_new(i.spooled, i.probed, i.origin, Metadata(), added_by, i.derived, *keys[sha])
                for sha, i in first.items()
            ]
            instances_insert(items)
            by_sha = {**existing, **{item.sha256: item for item in items}}
            results = [
                IngestResult(item=by_sha[i.spooled.sha256], duplicate=first.get(i.spooled.sha256) is not i)
                for i in inputs
            ]
            sources = [
                source_row(result.item, i.origin, Metadata(), user)
                for i, result in zip(inputs, results, strict=True)
            ]
            instances_insert(sources)
            for result, source in zip(results, sources, strict=True):
                events.send_item_arrived(item=result.item, source=source, tags=(), tag_source="", actor=user)
            if within is not None:
                within(results)
        committed = True
    except JobSuperseded:
        committed = True  # another attempt owns these inputs and stores the same files
        raise
    finally:
        if not committed and written:
            _delete_unowned(written)
    return results


def _delete_unowned(written: list[tuple[str, str]]) -> None:
    """Delete the (key, sha256) files a failed batch wrote, except those of bytes a committed
    item has now (a concurrent ingest of the same bytes won: its row owns the file)."""
    try:
        owned = set(
            MediaItem.objects.filter(sha256__in={sha for _, sha in written}).values_list("sha256", flat=True)
        )
    except Exception:  # the database is gone too: the batch's files are nobody's
        logger.exception("could not check which of a failed batch's files are owned; deleting them")
        owned = set()
    storage.delete_keys([key for key, sha in written if sha not in owned])


def batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def internal_error() -> DomainError:
    return DomainError("An internal error stopped this input; it was logged.", code="media.internal_error")
