"""Processing intake entries through the media app's jobs, collecting what arrived into the
target dataset, and the later states (docs/intake.md#processing).

An entry never fetches or ingests by itself: URLs, zips and folders go through the media
app's bulk-upload job, videos through its frame-capture job. When that job ends, `collect`
adds every item it produced or found (duplicates included) to the dataset and subset through
the datasets app's `members_edit`, and records them as the entry's arrivals.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Q

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets import services as dataset_services
from apps.datasets.services.members import MAX_IDS
from apps.intake import conf
from apps.intake.models import IntakeArrival, IntakeEntry
from apps.intake.services.arrival import on_arrival_start
from apps.intake.services.entries import folder_files, folder_resolve, url_hash
from apps.intake.services.tagging import intake_tagging_settle_finished
from apps.jobs.models import Job, JobItem
from apps.media import conf as media_conf
from apps.media.models import MediaItem, MediaSource
from apps.media.services import media_upload_bulk_start
from apps.media.services.frames import media_frames_extract_start
from apps.search.query import QueryError, search_queryset

logger = logging.getLogger(__name__)

State = IntakeEntry.State
FAILURES_SHOWN = 3


def _processable(entry: IntakeEntry) -> bool:
    """Planned, failed, or added with inputs that failed (processing again retries those) or
    whose on-arrival tagging failed (processing again starts it again)."""
    return entry.state in (State.PLANNED, State.FAILED) or (
        entry.state == State.ADDED and (entry.failed_count > 0 or entry.tagging == IntakeEntry.Tagging.FAILED)
    )


def _known_urls(urls: list[str]) -> dict[str, int]:
    """URLs the library has already fetched, with their item: they are not fetched again."""
    by_hash = {url_hash(url): url for url in urls}
    known: dict[str, int] = {}
    hashes = list(by_hash)
    for start in range(0, len(hashes), 1000):
        rows = MediaSource.objects.filter(
            kind=MediaSource.Kind.URL, url_hash__in=hashes[start : start + 1000]
        ).values_list("url_hash", "url", "media_item_id")
        for digest, url, item_id in rows:
            if by_hash.get(digest) == url:
                known.setdefault(url, item_id)
    return known


def _arrive(entry: IntakeEntry, item_ids: list[int]) -> None:
    """Add the items to the target dataset (and subset) and record them as arrivals."""
    ids = sorted(set(item_ids))
    for start in range(0, len(ids), MAX_IDS):
        chunk = list(
            MediaItem.objects.filter(pk__in=ids[start : start + MAX_IDS]).values_list("pk", flat=True)
        )
        if not chunk:
            continue
        dataset_services.members_edit(owner=entry.dataset, action="add", item_ids=chunk)
        if entry.subset is not None:
            dataset_services.members_edit(owner=entry.subset, action="add", item_ids=chunk)
        IntakeArrival.objects.bulk_create(
            [IntakeArrival(entry=entry, media_item_id=i) for i in chunk],
            batch_size=1000,
            ignore_conflicts=True,
        )


def _recount(entry: IntakeEntry) -> None:
    counts = IntakeArrival.objects.filter(entry=entry).aggregate(
        added=Count("pk"), reviewed=Count("pk", filter=Q(reviewed=True))
    )
    entry.added_count, entry.reviewed_count = counts["added"], counts["reviewed"]


def _fail(entry: IntakeEntry, code: str, message: str) -> None:
    entry.state = State.FAILED
    entry.error_code, entry.error_message = code[:64], message


def _start_files(entry: IntakeEntry, actor: Any) -> Job:
    """The folder's files (or the kept zip) as one bulk-upload job."""
    with ExitStack() as stack:
        if entry.kind == IntakeEntry.Kind.ARCHIVE:
            handle = stack.enter_context(default_storage.open(entry.archive_key))
            return media_upload_bulk_start(
                archive=File(handle, name=entry.archive_name),  # type: ignore[arg-type]
                added_by=actor,
            )
        found = folder_files(folder_resolve(entry.folder))
        if not found:
            raise DomainError(f"The folder {entry.folder!r} has no files.", code="intake.folder_empty")
        if len(found) > media_conf.max_bulk_files():
            raise DomainError(
                f"The folder has {len(found)} files; one entry takes at most {media_conf.max_bulk_files()}. "
                "Plan one entry per subfolder, or zip it.",
                code="intake.folder_too_big",
            )
        # O_NOFOLLOW: a file swapped for a link after the listing is not followed out of the root.
        try:
            files = [
                File(
                    stack.enter_context(os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")),
                    name=name,
                )
                for path, name in found
            ]
        except OSError as exc:
            raise DomainError(
                f"A file of the folder could not be read ({exc.strerror}); check the folder and retry.",
                code="intake.folder_unreadable",
            ) from exc
        return media_upload_bulk_start(files=files, added_by=actor)  # type: ignore[arg-type]


def _query_ids(entry: IntakeEntry) -> list[int]:
    try:
        matches = search_queryset(q=entry.query, viewer=None)
        ids = list(matches.order_by("pk").values_list("pk", flat=True)[: conf.query_max() + 1])
    except QueryError as exc:
        raise DomainError(f"The query no longer parses: {exc.message}", code="intake.bad_query") from exc
    if len(ids) > conf.query_max():
        raise DomainError(
            f"The query matches more than {conf.query_max()} items; give the dataset a saved query instead.",
            code="intake.query_too_big",
        )
    return ids


def _start(entry: IntakeEntry, actor: Any) -> Job | None:
    """Begin the entry's work: the media job it waits for, or None when everything is here."""
    kind = entry.kind
    if kind == IntakeEntry.Kind.URLS:
        known = _known_urls(list(entry.urls))
        _arrive(entry, list(known.values()))
        todo = [url for url in entry.urls if url not in known]
        return media_upload_bulk_start(urls=todo, added_by=actor) if todo else None
    if kind in (IntakeEntry.Kind.ARCHIVE, IntakeEntry.Kind.FOLDER):
        return _start_files(entry, actor)
    if kind == IntakeEntry.Kind.VIDEO:
        if entry.video is None:
            raise DomainError("The video was deleted from the library.", code="intake.video_gone")
        return media_frames_extract_start(video=entry.video, request=entry.frame_plan, added_by=actor)
    _arrive(entry, _query_ids(entry))
    return None


def intake_entry_process(*, entry: IntakeEntry, actor: Any = None) -> IntakeEntry:
    """Process a planned entry, or retry a failed one: URLs the library already fetched are
    taken as they are, the rest goes to the media job, and the entry waits (FETCHING) for it.
    A request the media app refuses at once (the folder emptied, the video deleted, a zip over
    the limits) fails the entry with the reason; 409 when the entry is not processable."""
    with transaction.atomic():
        locked = (
            IntakeEntry.objects.select_for_update()
            .select_related("dataset", "subset", "video")
            .get(pk=entry.pk)
        )
        if not _processable(locked):
            raise ConflictError(
                f"Entry {locked.pk} is {locked.state}; only planned or failed entries (or added ones "
                "with failed inputs or failed tagging) are processed.",
                code="intake.not_processable",
                details={"state": locked.state},
            )
        if locked.state == State.ADDED and not locked.failed_count:
            # Everything arrived; only the on-arrival tagging failed: start it again.
            locked.error_code, locked.error_message = "", ""
            _arrived(locked, actor)
            locked.save()
            return locked
        try:
            with transaction.atomic():
                job = _start(locked, actor)
        except DomainError as err:
            _recount(locked)
            _fail(locked, err.code, err.message)
        else:
            _recount(locked)
            locked.job = job or locked.job
            locked.state = State.FETCHING if job else State.ADDED
            locked.error_code, locked.error_message = "", ""
            locked.failed_count = 0
            if job is None:
                _arrived(locked, actor)
        locked.save()
    return locked


def _arrived(entry: IntakeEntry, actor: Any = None) -> None:
    """The entry's items are in: start what `on_arrival` names; what cannot start is said on the
    entry (the arrivals stay; process the entry again, or run the scheme from its page)."""
    problems = on_arrival_start(entry=entry, actor=actor)
    if problems:
        note = "On arrival, not started: " + "; ".join(problems)
        entry.error_code = entry.error_code or "intake.on_arrival_not_started"
        entry.error_message = f"{entry.error_message} {note}".strip()


def _failures(job: Job) -> str:
    rows = JobItem.objects.filter(job=job, status=JobItem.Status.FAILED).order_by("seq")[:FAILURES_SHOWN]
    return "; ".join(f"{row.input}: {row.error_message}" for row in rows)


def intake_entry_collect(*, entry_id: int, also_failed: bool = False) -> IntakeEntry | None:
    """Take the arrivals of a FETCHING entry whose media job ended: every item the job created
    or found goes to the dataset; the entry becomes ADDED (failed inputs counted, their reasons
    in `error_message`) or FAILED when the job failed or was cancelled. Idempotent; does
    nothing while the job runs. `also_failed`: a FAILED entry too (its job was retried from the
    jobs page and ended again)."""
    with transaction.atomic():
        entry = (
            IntakeEntry.objects.select_for_update()
            .select_related("dataset", "subset")
            .filter(
                pk=entry_id, state__in=(State.FETCHING, State.FAILED) if also_failed else (State.FETCHING,)
            )
            .first()
        )
        job = Job.objects.filter(pk=entry.job_id).first() if entry is not None and entry.job_id else None
        if entry is None or (job is not None and not job.is_finished):
            return None
        if job is None:
            _fail(entry, "intake.job_gone", "The media job of this entry was deleted; process it again.")
            entry.save()
            return entry
        ids = JobItem.objects.filter(
            job=job, status__in=(JobItem.Status.CREATED, JobItem.Status.DUPLICATE), object_id__isnull=False
        ).values_list("object_id", flat=True)
        _arrive(entry, [i for i in ids if i is not None])
        _recount(entry)
        entry.failed_count = job.failures
        failures = _failures(job) if job.failures else ""
        if job.status == Job.Status.SUCCEEDED:
            entry.state = State.ADDED
            entry.error_code = "intake.some_inputs_failed" if failures else ""
            entry.error_message = f"{job.failures} failed: {failures}" if failures else ""
            _arrived(entry, job.created_by)
        elif job.status == Job.Status.CANCELLED:
            _fail(entry, "intake.cancelled", "Its job was cancelled; process the entry again to resume.")
        else:
            message = job.error_message or "The job failed."
            _fail(entry, job.error_code or "intake.job_failed", f"{message} {failures}".strip())
        entry.save()
    return entry


def intake_collect_for_job(*, job_id: int) -> list[int]:
    """Collect every entry waiting for this job (called when a media job task ends); an entry
    that failed with this job is collected again (the job was retried from the jobs page)."""
    waiting = IntakeEntry.objects.filter(job_id=job_id, state__in=(State.FETCHING, State.FAILED))
    ids = list(waiting.values_list("pk", flat=True))
    return [e for e in ids if intake_entry_collect(entry_id=e, also_failed=True) is not None]


def intake_collect_finished() -> list[int]:
    """Collect every FETCHING entry whose job has ended (the periodic fallback for a worker
    that stopped between finishing the job and collecting), then settle the ADDED entries whose
    on-arrival tagging ended (the fallback for a lost `job_finished` event). The ids of the
    entries that moved."""
    waiting = IntakeEntry.objects.filter(state=State.FETCHING).filter(
        Q(job__isnull=True) | Q(job__status__in=Job.FINISHED)
    )
    ids = list(waiting.order_by("pk").values_list("pk", flat=True)[:1000])
    collected = [entry_id for entry_id in ids if intake_entry_collect(entry_id=entry_id) is not None]
    return collected + intake_tagging_settle_finished()


@transaction.atomic
def intake_entry_mark_tagged(*, entry: IntakeEntry) -> IntakeEntry:
    """ADDED → TAGGED by hand: for entries with no on-arrival tagging, or whose tagging failed
    and was caught up some other way (an entry with tagging moves by itself when it ends)."""
    locked = IntakeEntry.objects.select_for_update().get(pk=entry.pk)
    if locked.state != State.ADDED:
        raise ConflictError(
            f"Entry {locked.pk} is {locked.state}; only added entries become tagged.",
            code="intake.not_added",
            details={"state": locked.state},
        )
    locked.state = State.TAGGED
    locked.save(update_fields=["state", "updated_at"])
    return locked


@transaction.atomic
def intake_entry_review(*, entry: IntakeEntry, item_ids: list[int] | None = None) -> IntakeEntry:
    """Mark arrivals reviewed (the given items, or all); once every arrival is reviewed the
    entry is REVIEWED. Items that did not arrive for this entry are refused (nothing changes)."""
    locked = IntakeEntry.objects.select_for_update().get(pk=entry.pk)
    if locked.state not in (State.ADDED, State.TAGGED, State.REVIEWED):
        raise ConflictError(
            f"Entry {locked.pk} is {locked.state}; review it once its items have arrived.",
            code="intake.not_added",
            details={"state": locked.state},
        )
    rows = IntakeArrival.objects.filter(entry=locked)
    if item_ids is not None:
        wanted = set(item_ids)
        found = set(rows.filter(media_item_id__in=wanted).values_list("media_item_id", flat=True))
        absent = sorted(wanted - found)
        if absent:
            raise DomainError(
                f"items: not arrivals of entry {locked.pk}: {', '.join(map(str, absent[:20]))}.",
                code="intake.not_arrivals",
                details={"absent": absent[:100]},
            )
        rows = rows.filter(media_item_id__in=wanted)
    rows.filter(reviewed=False).update(reviewed=True)
    _recount(locked)
    if locked.added_count and locked.reviewed_count == locked.added_count:
        locked.state = State.REVIEWED
    locked.save()
    return locked
