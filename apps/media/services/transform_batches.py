"""Bulk transforms in batches: the pixel work on every core, the rows of many results at once.

`media_item_transform` (transforms.py) makes one result with about ten database round trips in
its own transaction. Bulk transforms (the bulk job, dataset conform) go through
`media_item_transform_batches` instead, which does for transform results what `batch.py` does
for uploads (docs/architecture.md#media-pipelines).
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.db import instances_insert
from apps.core.exceptions import UnprocessableError
from apps.jobs.exceptions import JobSuperseded
from apps.media import events
from apps.media.formats import PIL_FORMATS
from apps.media.models import MediaItem
from apps.media.services import storage
from apps.media.services.batch import ingest_threads
from apps.media.services.ingest import IngestResult, Metadata, _item_new, source_row
from apps.media.services.recipes import recipe_clean, recipe_hash
from apps.media.services.transforms import (
    Transformed,
    _check_kind,
    _derived,
    _origin,
    _render,
    _Rendered,
)

# One batch's results in input order; None for a pair passed through (recipe None).
Batch = list[tuple[MediaItem, Transformed | None]]
Record = Callable[[Batch], None]
BATCH_SIZE = 16  # results whose rows one transaction writes (docs/architecture.md#media-pipelines)
logger = logging.getLogger(__name__)


def media_item_transform_many(
    pairs: Iterable[tuple[MediaItem, Any]],
    *,
    added_by: Any = None,
    job_id: int | None = None,
    threads: int | None = None,
    size: int = BATCH_SIZE,
) -> Generator[tuple[MediaItem, Transformed], None, None]:
    """`media_item_transform` over (item, recipe) pairs, yielded in their order with the result
    or the exception each raised: `media_item_transform_batches` one result at a time.
    Closing the iterator early drops the pending renders, which wrote nothing."""
    batches_ = media_item_transform_batches(
        pairs, added_by=added_by, job_id=job_id, threads=threads, size=size
    )
    try:
        for batch_ in batches_:
            for item, outcome in batch_:
                assert outcome is not None
                yield item, outcome
    finally:
        batches_.close()


def media_item_transform_batches(
    pairs: Iterable[tuple[MediaItem, Any]],
    *,
    added_by: Any = None,
    job_id: int | None = None,
    threads: int | None = None,
    size: int = BATCH_SIZE,
    record: Record | None = None,
) -> Generator[Batch, None, None]:
    """Transform (item, recipe) pairs in batches of `size`, yielding each batch's results in
    input order once its transaction committed (docs/architecture.md#media-pipelines).

    The pixel work (decode, transform, encode, thumbnail, phash, SHA-256) runs on a pool of
    `threads` (default: the bulk-ingest threads, every core) up to two batches ahead. Each batch
    then costs a fixed number of queries: one probe for earlier results of the same recipes
    (`(parent, recipe_hash)`), one `sha256__in` probe, and one transaction writing every new
    item, source row, inherited tag set (`items_derived`) and `record(batch)` (a job's results)
    together, so a job killed mid-batch resumes exactly. Files are written before that
    transaction and deleted again if it fails; the batch then runs again one item at a time, each
    item with its own transaction and `record([(item, outcome)])`, so one bad item fails alone.
    A pair whose recipe is None is passed through (outcome None): a caller's own items keep
    their place in the batch and its `record`. Closing the iterator drops the pending renders."""
    count = threads or ingest_threads()
    made: dict[tuple[int, str], MediaItem] = {}  # results of earlier batches of this call
    pending: collections.deque[list[_Work]] = collections.deque()
    source = iter(pairs)
    with ThreadPoolExecutor(count, thread_name_prefix="transform") as pool:
        try:
            while True:
                while len(pending) < 2 and (chunk := list(itertools.islice(source, max(1, size)))):
                    pending.append(_prepare_batch(pool, chunk))
                if not pending:
                    return
                works = pending.popleft()
                yield _store_batch(works, made, added_by=added_by, job_id=job_id, record=record)
        finally:
            for works in pending:
                for work in works:
                    if work.future is not None:
                        work.future.cancel()


@dataclass
class _Work:
    """One pair of a batch on its way: what is known of it so far."""

    item: MediaItem
    recipe: Any
    clean: dict[str, Any] | None = None
    digest: str = ""
    outcome: Transformed | None = None  # decided: an error, or an earlier result of the recipe
    future: Future[_Encoded] | None = None
    rendered: _Rendered | None = None
    thumbnail: bytes | None = None
    spooled: storage.Spooled | None = None
    same_as: _Work | None = None  # an earlier pair of the batch with the same parent and recipe

    @property
    def key(self) -> tuple[int, str]:
        return self.item.pk, self.digest


@dataclass(frozen=True)
class _Encoded:
    """A render with its SHA-256 and WebP thumbnail bytes: every CPU step done in the pool."""

    rendered: _Rendered
    spooled: storage.Spooled
    thumbnail: bytes | None


def _render_encoded(storage_key: str, item_format: str, clean: dict[str, Any]) -> _Encoded:
    rendered = _render(storage_key, item_format, clean)
    thumb = rendered.probed.thumbnail
    return _Encoded(
        rendered,
        storage.in_memory(rendered.data),
        storage.thumbnail_bytes(thumb) if thumb is not None else None,
    )


def _prepare_batch(pool: ThreadPoolExecutor, chunk: list[tuple[MediaItem, Any]]) -> list[_Work]:
    """Clean each recipe, find earlier results of them in one query, submit the renders."""
    works = [_Work(item=item, recipe=recipe) for item, recipe in chunk]
    for work in works:
        if work.recipe is None:
            continue
        try:
            _check_kind(work.item)
            work.clean = recipe_clean(work.recipe)
            work.digest = recipe_hash(work.clean)
        except Exception as exc:
            work.outcome = exc
    asked = [w for w in works if w.clean is not None and w.outcome is None]
    found: dict[tuple[int, str], int] = {}
    if asked:
        rows = MediaItem.objects.filter(
            parent_id__in={w.item.pk for w in asked}, recipe_hash__in={w.digest for w in asked}
        ).values_list("parent_id", "recipe_hash", "pk")
        for parent_id, digest, pk in rows:
            found[(parent_id, digest)] = min(pk, found.get((parent_id, digest), pk))
    earlier = MediaItem.objects.in_bulk(list(found.values())) if found else {}
    first: dict[tuple[int, str], _Work] = {}
    for work in asked:
        if work.key in found:
            work.outcome = IngestResult(item=earlier[found[work.key]], duplicate=True)
        elif work.key in first:
            work.same_as = first[work.key]
        elif PIL_FORMATS.get(work.item.format) is None:
            work.outcome = UnprocessableError(
                f"Items in {work.item.format} format cannot be transformed.", code="media.not_an_image"
            )
        else:
            first[work.key] = work
            assert work.clean is not None
            work.future = pool.submit(_render_encoded, work.item.storage_key, work.item.format, work.clean)
    return works


def _store_batch(
    works: list[_Work],
    made: dict[tuple[int, str], MediaItem],
    *,
    added_by: Any,
    job_id: int | None,
    record: Record | None,
) -> Batch:
    """Collect the batch's renders, then commit it as a unit; if that fails, commit it again
    one pair at a time, so the failure stays with the pair that causes it."""
    for work in works:
        if work.future is not None:
            try:
                encoded = work.future.result()
                work.rendered, work.spooled, work.thumbnail = (
                    encoded.rendered,
                    encoded.spooled,
                    encoded.thumbnail,
                )
            except Exception as exc:
                work.outcome = exc
    commit = functools.partial(_commit, made=made, added_by=added_by, job_id=job_id, record=record)
    try:
        return commit(works)
    except JobSuperseded:
        raise
    except Exception:
        if len(works) == 1:
            return _alone(works[0], commit, record)
        logger.exception("a transform batch of %s items failed; it runs again one item at a time", len(works))
    # In input order: a repeat of a pair (same_as) takes the outcome its first got just before.
    return [pair for work in works for pair in _alone(work, commit, record)]


def _alone(work: _Work, commit: Callable[[list[_Work]], Batch], record: Record | None) -> Batch:
    """Commit one pair; if even that fails, its outcome is the error (recorded on its own).
    A lost race with a concurrent writer of the same bytes is tried once more (as a duplicate)."""
    for attempt in (1, 2):
        try:
            return commit([work])
        except JobSuperseded:
            raise
        except Exception as exc:
            if isinstance(exc, IntegrityError) and attempt == 1:
                continue  # a concurrent writer stored the same bytes: now a duplicate
            logger.warning("transform of item %s failed while storing", work.item.pk, exc_info=True)
            work.outcome = exc
            if record is not None:
                with transaction.atomic():
                    record([(work.item, exc)])
            return [(work.item, exc)]
    raise AssertionError("unreachable")


def _commit(
    works: list[_Work],
    *,
    made: dict[tuple[int, str], MediaItem],
    added_by: Any,
    job_id: int | None,
    record: Record | None,
) -> Batch:
    """One probe of the library for the results' bytes, the new files, then one
    transaction for every row and `record`. On failure: the files this call wrote are deleted,
    the works are as before, and the error propagates (JobSuperseded leaves the files to the
    attempt that owns the job now: same bytes, same content-addressed keys)."""
    written: list[str] = []
    decided = [w.outcome for w in works]
    committed = False
    try:
        todo = [w for w in works if w.spooled is not None and w.outcome is None and w.key not in made]
        shas = {w.spooled.sha256 for w in todo if w.spooled is not None}
        existing = {i.sha256: i for i in MediaItem.objects.filter(sha256__in=shas)} if shas else {}
        new: dict[str, _Work] = {}
        for w in todo:
            assert w.spooled is not None
            if w.spooled.sha256 not in existing:
                new.setdefault(w.spooled.sha256, w)
        written = _files_write(list(new.values()))
        with transaction.atomic():
            _rows_write(works, made, existing, new, added_by=added_by, job_id=job_id)
            outcomes = _outcomes(works)
            if record is not None:
                record(outcomes)
        committed = True
    except JobSuperseded:
        committed = True
        raise
    finally:
        if not committed:
            storage.delete_keys(written)
            for w, outcome in zip(works, decided, strict=True):
                w.outcome = outcome
    for w in works:
        if isinstance(w.outcome, IngestResult) and w.clean is not None:
            made.setdefault(w.key, w.outcome.item)
    return outcomes


def _files_write(works: list[_Work]) -> list[str]:
    """Store each new result's original and thumbnail, already encoded in the pool (file writes
    only, on this thread: the pool goes on rendering the next batch); the keys this call wrote.
    If a write fails, what this call wrote is deleted and the error propagates."""
    keys: list[str] = []
    try:
        for work in works:
            assert work.spooled is not None
            assert work.rendered is not None
            original = storage.original_key(work.spooled.sha256, work.rendered.probed.extension)
            if storage.store_original(original, work.spooled):
                keys.append(original)
            thumb = storage.thumbnail_key(work.spooled.sha256)
            if work.thumbnail is not None and storage.store_bytes(thumb, work.thumbnail):
                keys.append(thumb)
    except BaseException:
        storage.delete_keys(keys)
        raise
    return keys


def _rows_write(
    works: list[_Work],
    made: dict[tuple[int, str], MediaItem],
    existing: dict[str, MediaItem],
    new: dict[str, _Work],
    *,
    added_by: Any,
    job_id: int | None,
) -> None:
    """Inside the batch's transaction: the new items, every arrival's source row and event, and
    the new items' inherited tags, as `media_item_transform` one pair at a time would leave them."""
    metadata = Metadata()
    user = added_by if added_by is not None and added_by.is_authenticated else None
    items = []
    for w in new.values():
        assert w.spooled is not None
        assert w.rendered is not None
        assert w.clean is not None
        probed = w.rendered.probed
        items.append(
            _item_new(
                w.spooled,
                probed,
                _origin(w.item, job_id),
                metadata,
                added_by,
                _derived(w.item, w.clean, w.digest),
                storage.original_key(w.spooled.sha256, probed.extension),
                storage.thumbnail_key(w.spooled.sha256),
            )
        )
    instances_insert(items)
    created = dict(zip(new, items, strict=True))
    arrivals: list[tuple[MediaItem, _Work]] = []
    derived: list[tuple[MediaItem, MediaItem]] = []
    for w in works:
        if w.outcome is not None or w.same_as is not None or w.recipe is None:
            continue
        if w.key in made:  # an earlier batch of this call made it (the same pair twice)
            w.outcome = IngestResult(item=made[w.key], duplicate=True)
            continue
        assert w.spooled is not None
        sha = w.spooled.sha256
        if new.get(sha) is w:
            w.outcome = IngestResult(item=created[sha], duplicate=False)
            derived.append((created[sha], w.item))
        else:  # same bytes as an item in the library, or an earlier pair of this batch
            w.outcome = IngestResult(item=existing.get(sha) or created[sha], duplicate=True)
        arrivals.append((w.outcome.item, w))
    sources = [source_row(item, _origin(w.item, job_id), metadata, user) for item, w in arrivals]
    instances_insert(sources)
    for (item, _), source in zip(arrivals, sources, strict=True):
        events.send_item_arrived(item=item, source=source, tags=(), tag_source="", actor=user)
    events.send_items_derived(pairs=derived, relation="parent")
    for w in works:
        if w.same_as is not None:
            w.outcome = _again(w.same_as.outcome)


def _again(outcome: Transformed | None) -> Transformed | None:
    """What a repeat of a pair gets: the first one's result as a duplicate, or its error."""
    if isinstance(outcome, IngestResult):
        return IngestResult(item=outcome.item, duplicate=True)
    return outcome


def _outcomes(works: list[_Work]) -> Batch:
    return [(w.item, w.outcome) for w in works]
