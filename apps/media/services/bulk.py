"""Bulk upload: validate and stage inputs in the request, ingest them in a job on the media queue."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from contextlib import ExitStack
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
from apps.media.services import archives, fetch
from apps.media.services.ingest import IngestResult, Metadata, Origin, Within, media_ingest, metadata_clean

logger = logging.getLogger(__name__)

JOB_KIND = "media.upload_bulk"
TASK_NAME = "media.upload_bulk"
_METADATA_KEYS = ("name", "source", "artist", "tags", "tag_source")


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


def _ingest_entry(
    entry: dict[str, Any],
    defaults: dict[str, Any],
    job: Job,
    user: Any,
    zips: dict[str, ZipFile],
    stack: ExitStack,
    seq: int,
    within: Within,
) -> IngestResult:
    fields = {k: entry.get(k) or defaults.get(k) for k in _METADATA_KEYS}
    metadata: Metadata = metadata_clean(**fields)
    if entry["type"] == "url":
        fetched = fetch.fetch_url(entry["url"])
        try:
            with fetched.path.open("rb") as handle:
                return media_ingest(
                    stream=handle,
                    metadata=metadata,
                    added_by=user,
                    within=within,
                    origin=Origin(
                        kind="url",
                        url=entry["url"],
                        original_filename=fetched.filename,
                        import_job_id=job.pk,
                        import_seq=seq,
                    ),
                )
        finally:
            fetched.path.unlink(missing_ok=True)
    if entry["type"] == "member":
        zf = zips.get(entry["key"])
        if zf is None:
            zf = stack.enter_context(ZipFile(stack.enter_context(default_storage.open(entry["key"]))))
            zips[entry["key"]] = zf
        with zf.open(zf.infolist()[entry["index"]]) as stream:
            return media_ingest(
                stream=stream,
                metadata=metadata,
                added_by=user,
                within=within,
                origin=Origin(
                    kind="zip",
                    archive_member=entry["member"],
                    original_filename=entry["member"],
                    import_job_id=job.pk,
                    import_seq=seq,
                ),
            )
    with default_storage.open(entry["key"]) as stream:
        return media_ingest(
            stream=stream,
            metadata=metadata,
            added_by=user,
            within=within,
            origin=Origin(
                kind="upload",
                original_filename=entry.get("filename", ""),
                import_job_id=job.pk,
                import_seq=seq,
            ),
        )


def _recorder(job: Job, seq: int, label: str) -> Within:
    """Records input `seq`'s outcome inside the transaction that stores it (one fenced step)."""

    def record(result: IngestResult) -> None:
        status = JobItem.Status.DUPLICATE if result.duplicate else JobItem.Status.CREATED
        job_services.job_item_record(job=job, seq=seq, input=label, status=status, object_id=result.item.pk)

    return record


def media_upload_bulk_run(*, job_id: int) -> None:
    """Ingest each staged input, recording one JobItem per input; resumes after a crash.

    Does nothing when there is no attempt to make (another delivery owns the job, or it was
    cancelled). Each input's rows and its JobItem are written in one fenced transaction, so an
    input is done exactly once even when a stalled worker wakes up after its job was taken
    over (it stops with JobSuperseded and writes nothing). The job service removes the staged
    files when the job ends.
    """
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    inputs: list[dict[str, Any]] = job.params.get("inputs", [])
    defaults: dict[str, Any] = job.params.get("defaults", {})
    done = job_services.job_done_seqs(job=job)
    zips: dict[str, ZipFile] = {}
    with ExitStack() as stack:
        for seq, entry in enumerate(inputs):
            if seq in done:
                continue
            if job.cancel_requested:
                job_services.job_log(job=job, line=f"Cancelled after {job.progress_done} inputs.")
                break
            label = _label(entry)
            try:
                _ingest_entry(entry, defaults, job, user, zips, stack, seq, _recorder(job, seq, label))
            except JobSuperseded:
                raise
            except DomainError as err:
                job_services.job_item_record(
                    job=job, seq=seq, input=label, status=JobItem.Status.FAILED, error=err
                )
            except Exception:
                logger.exception("bulk upload job %s: input %s failed", job.pk, seq)
                job_services.job_item_record(
                    job=job,
                    seq=seq,
                    input=label,
                    status=JobItem.Status.FAILED,
                    error=DomainError(
                        "An internal error stopped this input; it was logged.", code="media.internal_error"
                    ),
                )
    job_services.job_finish(job=job, result={"counts": job.counts})
