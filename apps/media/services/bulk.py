"""Bulk upload: validate and stage inputs in the request, ingest them in a job on the media queue."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import IO, Any
from zipfile import ZipFile

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from apps.core.exceptions import DomainError, PayloadTooLargeError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job, JobItem
from apps.media import conf
from apps.media.services import archives, batch, fetch
from apps.media.services.batch import BatchInput
from apps.media.services.ingest import IngestResult, Metadata, Origin, Within, media_ingest, metadata_clean

logger = logging.getLogger(__name__)

JOB_KIND = "media.upload_bulk"
TASK_NAME = "media.upload_bulk"
_METADATA_KEYS = ("name", "source", "artist", "tags", "tag_source")
# Inputs per batch: enough to keep every thread busy between the batches' transactions, few
# enough that progress moves often and a crash redoes little.
_BATCH_MIN, _BATCH_PER_THREAD = 8, 8


def _staging_prefix() -> str:
    return f"staging/{secrets.token_hex(8)}"


def _stage(prefix: str, index: int, upload: UploadedFile | IO[bytes]) -> str:
    key = f"{prefix}/{index:06d}"
    upload.seek(0)
    return default_storage.save(key, upload)


def media_upload_bulk_start(
    *,
    files: Sequence[UploadedFile] = (),
    archive: UploadedFile | None = None,
    urls: Sequence[Any] = (),
    items: Sequence[Any] = (),
    defaults: dict[str, Any] | None = None,
    added_by: Any = None,
) -> Job:
    """Check the request as a whole, stage files in storage and queue the ingest job.

    Refuses (4xx, nothing staged) empty requests, too many inputs, bad metadata and hostile
    archives. Individual files and URLs are judged by the job, one result per input.
    """
    defaults = defaults or {}
    base = metadata_clean(**{k: defaults.get(k) for k in _METADATA_KEYS if k != "name"})
    if not (files or archive or urls or items):
        raise DomainError(
            "Nothing to upload: send files, an archive, urls or items.", code="media.nothing_to_upload"
        )
    if len(files) > conf.max_bulk_files():
        raise PayloadTooLargeError(
            f"At most {conf.max_bulk_files()} files per request; use a zip for more.",
            code="media.too_many_files",
        )
    if len(urls) + len(items) > conf.max_bulk_urls():
        raise PayloadTooLargeError(
            f"At most {conf.max_bulk_urls()} URLs or items per request.",
            code="media.too_many_urls",
        )
    inputs: list[dict[str, Any]] = []
    for index, entry in enumerate(items):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise DomainError(
                f"items[{index}] must be an object with a 'url'.",
                code="media.invalid_item",
                details={"index": index},
            )
        unknown = set(entry) - {"url", *_METADATA_KEYS}
        if unknown:
            raise DomainError(
                f"items[{index}] has unknown fields: {', '.join(sorted(unknown))}.",
                code="media.invalid_item",
                details={"index": index},
            )
        try:
            metadata_clean(**{k: entry.get(k) for k in _METADATA_KEYS})
        except DomainError as err:
            raise DomainError(
                f"items[{index}]: {err.message}", code=err.code, details={"index": index, **err.details}
            ) from err
        inputs.append({"type": "url", **{k: entry[k] for k in entry}})
    for url in urls:
        if not isinstance(url, str):
            raise DomainError("urls must be a list of strings.", code="media.invalid_item")
        inputs.append({"type": "url", "url": url})

    members: list[archives.ArchiveMember] = []
    if archive is not None:
        members = archives.archive_members(archive)
    prefix = _staging_prefix()
    staged: list[str] = []
    try:
        for index, upload in enumerate(files):
            key = _stage(prefix, index, upload)
            staged.append(key)
            inputs.append({"type": "file", "key": key, "filename": upload.name or ""})
        if archive is not None:
            key = _stage(prefix, len(files), archive)
            staged.append(key)
            inputs.extend({"type": "member", "key": key, "index": m.index, "member": m.name} for m in members)
        return job_services.job_start(
            title="Bulk upload",
            kind=JOB_KIND,
            task=TASK_NAME,
            created_by=added_by,
            total=len(inputs),
            params={
                "inputs": inputs,
                "staged": staged,
                "defaults": {
                    "source": base.source,
                    "artist": base.artist,
                    "tags": list(base.tags),
                    "tag_source": base.tag_source,
                },
            },
        )
    except BaseException:
        for key in staged:
            default_storage.delete(key)
        raise


def _label(entry: dict[str, Any]) -> str:
    if entry["type"] == "url":
        return str(entry["url"])
    if entry["type"] == "member":
        return str(entry["member"])
    return str(entry.get("filename") or entry["key"])


def _recorder(job: Job, seq: int, label: str) -> Within:
    """Records input `seq`'s outcome inside the transaction that stores it (one fenced step)."""

    def record(result: IngestResult) -> None:
        status = JobItem.Status.DUPLICATE if result.duplicate else JobItem.Status.CREATED
        job_services.job_item_record(job=job, seq=seq, input=label, status=status, object_id=result.item.pk)

    return record


def _failure(job: Job, seq: int, exc: BaseException) -> DomainError:
    if isinstance(exc, DomainError):
        return exc
    logger.error("bulk upload job %s: input %s failed", job.pk, seq, exc_info=exc)
    return batch.internal_error()


class _Zips:
    """Each thread's open archives (a ZipFile is not safe to share between threads)."""

    def __init__(self, stack: ExitStack) -> None:
        self._local = threading.local()
        self._stack = stack
        self._lock = threading.Lock()

    def member(self, key: str, index: int) -> IO[bytes]:
        zips: dict[str, ZipFile] = self._local.__dict__.setdefault("zips", {})
        zf = zips.get(key)
        if zf is None:
            with self._lock:  # the stack closes every thread's archives when the job ends
                zf = self._stack.enter_context(ZipFile(self._stack.enter_context(default_storage.open(key))))
            zips[key] = zf
        return zf.open(zf.infolist()[index])


@contextmanager
def _fetched(url: str, into: BatchInput) -> Iterator[IO[bytes]]:
    """Download `url` (in a worker thread); the origin learns the file name the server gave."""
    fetched = fetch.fetch_url(url)
    into.origin = replace(into.origin, original_filename=fetched.filename)
    try:
        with fetched.path.open("rb") as handle:
            yield handle
    finally:
        fetched.path.unlink(missing_ok=True)


def _batch_input(entry: dict[str, Any], metadata: Metadata, job: Job, seq: int, zips: _Zips) -> BatchInput:
    """What the batch needs of one input: how to open it (in a worker thread) and its origin."""
    kind = entry["type"]
    if kind == "url":
        url = entry["url"]
        fetched = BatchInput(
            open=lambda: _fetched(url, fetched),
            metadata=metadata,
            origin=Origin(kind="url", url=url, import_job_id=job.pk, import_seq=seq),
        )
        return fetched
    key = entry["key"]
    if kind == "member":
        index, member = entry["index"], entry["member"]
        return BatchInput(
            open=lambda: zips.member(key, index),
            metadata=metadata,
            origin=Origin(
                kind="zip",
                archive_member=member,
                original_filename=member,
                import_job_id=job.pk,
                import_seq=seq,
            ),
        )
    return BatchInput(
        open=lambda: default_storage.open(key),
        metadata=metadata,
        origin=Origin(
            kind="upload", original_filename=entry.get("filename", ""), import_job_id=job.pk, import_seq=seq
        ),
    )


@dataclass
class _Flight:
    """A batch of the job in flight: its inputs, the outcomes known before any file work
    (metadata refused), and the ingest batch doing the rest."""

    chunk: list[tuple[int, dict[str, Any]]]
    outcomes: list[job_services.ItemOutcome]
    seqs: list[int]  # the seq of each input of `batch`, in order
    batch: batch.IngestBatch


def _batch_begin(
    job: Job,
    chunk: list[tuple[int, dict[str, Any]]],
    defaults: dict[str, Any],
    zips: _Zips,
    pool: Executor | None,
    pending: _Flight | None,
) -> _Flight:
    """Clean the chunk's metadata and start its file work in the pool (spooling, then, once the
    library has been asked which bytes it has, probing and storing): it runs while the caller
    commits `pending`, the batch before it."""
    outcomes: list[job_services.ItemOutcome] = []
    inputs: list[tuple[int, BatchInput]] = []
    for seq, entry in chunk:
        try:  # metadata_clean reads the tag vocabulary: here, not in a worker thread
            metadata = metadata_clean(**{k: entry.get(k) or defaults.get(k) for k in _METADATA_KEYS})
        except DomainError as err:
            outcomes.append(
                job_services.ItemOutcome(
                    seq=seq, input=_label(entry), status=JobItem.Status.FAILED, error=err
                )
            )
            continue
        inputs.append((seq, _batch_input(entry, metadata, job, seq, zips)))
    flight = _Flight(
        chunk=chunk,
        outcomes=outcomes,
        seqs=[seq for seq, _ in inputs],
        batch=batch.IngestBatch([i for _, i in inputs], pool).begin(),
    )
    try:
        flight.batch.probe(pending=pending.batch if pending is not None else None)
    except BaseException:
        flight.batch.discard()
        raise
    return flight


def _batch_finish(job: Job, user: Any, flight: _Flight, defaults: dict[str, Any], zips: _Zips) -> None:
    """Commit a batch with its JobItems in one fenced transaction. If that fails, the batch's
    inputs run again one at a time, so one bad input cannot take the others down with it."""
    labels = {seq: _label(entry) for seq, entry in flight.chunk}

    def record(results: list[batch.Outcome]) -> None:
        outcomes = list(flight.outcomes)
        for seq, outcome in zip(flight.seqs, results, strict=True):
            label = labels[seq]
            if outcome.result is not None:
                status = JobItem.Status.DUPLICATE if outcome.result.duplicate else JobItem.Status.CREATED
                outcomes.append(
                    job_services.ItemOutcome(
                        seq=seq, input=label, status=status, object_id=outcome.result.item.pk
                    )
                )
            else:
                assert outcome.error is not None
                error = _failure(job, seq, outcome.error)
                outcomes.append(
                    job_services.ItemOutcome(seq=seq, input=label, status=JobItem.Status.FAILED, error=error)
                )
        job_services.job_items_record(job=job, outcomes=sorted(outcomes, key=lambda o: o.seq))

    try:
        flight.batch.commit(added_by=user, record=record)
    except JobSuperseded:
        raise
    except Exception:
        logger.exception("bulk upload job %s: a batch failed; its inputs run one at a time", job.pk)
        for seq, entry in flight.chunk:
            _run_one(job, user, seq, entry, defaults, zips)


def _run_one(
    job: Job, user: Any, seq: int, entry: dict[str, Any], defaults: dict[str, Any], zips: _Zips
) -> None:
    label = _label(entry)
    try:
        metadata = metadata_clean(**{k: entry.get(k) or defaults.get(k) for k in _METADATA_KEYS})
        one = _batch_input(entry, metadata, job, seq, zips)
        with one.open() as stream:
            media_ingest(
                stream=stream,
                metadata=metadata,
                added_by=user,
                within=_recorder(job, seq, label),
                origin=one.origin,
            )
    except JobSuperseded:
        raise
    except Exception as exc:
        job_services.job_item_record(
            job=job, seq=seq, input=label, status=JobItem.Status.FAILED, error=_failure(job, seq, exc)
        )


def media_upload_bulk_run(*, job_id: int) -> None:
    """Ingest the staged inputs in batches, recording one JobItem per input; resumes after a crash.

    Does nothing when there is no attempt to make (another delivery owns the job, or it was
    cancelled). A batch's file work runs in a thread pool (`batch.ingest_threads()` threads:
    every core) and its rows and JobItems are written in one fenced transaction
    (`batch.media_ingest_many`), so an input is done exactly once even when a stalled worker
    wakes up after its job was taken over (it stops with JobSuperseded and writes nothing). The
    job service removes the staged files when the job ends.
    """
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    inputs: list[dict[str, Any]] = job.params.get("inputs", [])
    defaults: dict[str, Any] = job.params.get("defaults", {})
    done = job_services.job_done_seqs(job=job)
    todo = [(seq, entry) for seq, entry in enumerate(inputs) if seq not in done]
    threads = batch.ingest_threads()
    with ExitStack() as stack:
        zips = _Zips(stack)
        pool = (
            stack.enter_context(ThreadPoolExecutor(threads, thread_name_prefix="ingest"))
            if threads > 1
            else None
        )
        # Pipelined: batch N+1's file work runs in the pool while batch N commits here.
        flight: _Flight | None = None
        try:
            for chunk in batch.batches(todo, max(_BATCH_MIN, _BATCH_PER_THREAD * threads)):
                if job.cancel_requested:
                    break
                following = _batch_begin(job, chunk, defaults, zips, pool, flight)
                if flight is not None:
                    committing, flight = flight, following
                    _batch_finish(job, user, committing, defaults, zips)
                else:
                    flight = following
            if flight is not None:
                committing, flight = flight, None
                _batch_finish(job, user, committing, defaults, zips)
        except JobSuperseded:
            if flight is not None:  # its files are the new owner's to store (same keys)
                flight.batch.discard(keep_files=True)
            raise
        except BaseException:
            if flight is not None:
                flight.batch.discard()
            raise
        if job.cancel_requested:
            job_services.job_log(job=job, line=f"Cancelled after {job.progress_done} inputs.")
    job_services.job_finish(job=job, result={"counts": job.counts})
