"""Planning intake entries: checking what they take, creating, editing and deleting them
(docs/intake.md). Every service is one transaction: a refused request saves nothing."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db import transaction

from apps.core.exceptions import ConflictError, DomainError, PayloadTooLargeError
from apps.core.ints import INT_MAX, int_param
from apps.datasets import selectors as dataset_selectors
from apps.datasets.models import Dataset, Subset
from apps.intake import conf
from apps.intake.models import IntakeEntry
from apps.intake.services.arrival import on_arrival_resolve
from apps.media import conf as media_conf
from apps.media.models import MediaItem
from apps.media.services import archives, fetch
from apps.media.services.frame_requests import frames_request_clean
from apps.media.services.frames import expected_frames
from apps.search.query import QueryError, search_queryset

MAX_LINE_ERRORS = 100
_EDITABLE = ("title", "notes", "planned_count", "on_arrival")


def target_resolve(*, dataset: Any, subset: Any = None) -> tuple[Dataset, Subset | None]:
    """The target dataset and subset by id; an unknown one is the caller's mistake (400)."""
    if dataset in (None, ""):
        raise DomainError("dataset: which dataset the items go to.", code="intake.no_dataset")
    try:
        target = dataset_selectors.dataset_get(dataset_id=dataset)
    except DomainError as err:
        raise DomainError(
            f"dataset: no dataset {dataset}.", code="intake.unknown_dataset", details={"field": "dataset"}
        ) from err
    if subset in (None, ""):
        return target, None
    try:
        part = dataset_selectors.subset_get(dataset=target, subset_id=subset)
    except DomainError as err:
        raise DomainError(
            f"subset: dataset “{target.name}” has no subset {subset}.",
            code="intake.unknown_subset",
            details={"field": "subset"},
        ) from err
    return target, part


def urls_parse(raw: Any) -> list[str]:
    """URLs from a pasted list (one per line; blank lines and `#` comments skipped) or a list
    of strings, in order without repeats. Every line is checked the way the fetcher checks a
    URL's shape; any bad line refuses the whole list with every line's error in
    `details["lines"]` ([{"line": n, "url": …, "message": …}])."""
    if isinstance(raw, str):
        lines = raw.splitlines()
    elif isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw):
        lines = list(raw)
    else:
        raise DomainError("urls: a list of URLs or text with one URL per line.", code="intake.bad_urls")
    urls: list[str] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        try:
            fetch.check_url(url)
        except DomainError as err:
            errors.append({"line": number, "url": url[:200], "message": err.message})
            continue
        if url not in urls:
            urls.append(url)
    if errors:
        first = "; ".join(f"line {e['line']}: {e['message']}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise DomainError(
            f"Fix these lines and send the list again; nothing was saved. {first}{more}",
            code="intake.bad_urls",
            details={"field": "urls", "lines": errors[:MAX_LINE_ERRORS], "errors": len(errors)},
        )
    if not urls:
        raise DomainError("urls: no URLs given.", code="intake.no_urls", details={"field": "urls"})
    if len(urls) > media_conf.max_bulk_urls():
        raise PayloadTooLargeError(
            f"urls: at most {media_conf.max_bulk_urls()} URLs per request ({len(urls)} given).",
            code="intake.too_many_urls",
        )
    return urls


def url_hash(url: str) -> str:
    """How the media app keys a URL arrival (MediaSource.url_hash)."""
    return hashlib.sha256(url.encode()).hexdigest()


def folder_resolve(folder: str) -> Path:
    """`folder` (relative to BAGGINTAG_INTAKE_FOLDER_ROOT) as an existing folder inside the
    root, links resolved; anything outside the root (absolute paths, `..`, links out) is refused."""
    root_setting = conf.folder_root()
    if not root_setting:
        raise DomainError(
            "Folder entries are off: the server has no BAGGINTAG_INTAKE_FOLDER_ROOT.",
            code="intake.folders_disabled",
            details={"field": "folder"},
        )
    if not isinstance(folder, str) or not folder.strip() or "\x00" in folder:
        raise DomainError(
            "folder: a folder below the intake root.", code="intake.bad_folder", details={"field": "folder"}
        )
    root = Path(root_setting).resolve()
    path = (root / folder.strip()).resolve()
    if path != root and root not in path.parents:
        raise DomainError(
            f"folder: {folder!r} is outside the intake root; give a folder below it.",
            code="intake.folder_outside_root",
            details={"field": "folder"},
        )
    if not path.is_dir():
        raise DomainError(
            f"folder: {folder!r} is not a folder below the intake root.",
            code="intake.folder_missing",
            details={"field": "folder"},
        )
    return path


def folder_files(path: Path) -> list[tuple[Path, str]]:
    """Regular files below `path` as (path, name relative to it), sorted; links are skipped
    (they could point outside the root) and linked folders are not entered."""
    found: list[tuple[Path, str]] = []
    for top, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            candidate = Path(top) / name
            if candidate.is_symlink() or not candidate.is_file():
                continue
            found.append((candidate, str(candidate.relative_to(path))))
    return found


def on_arrival_clean(raw: Any) -> dict[str, Any]:
    """The on-arrival choice: {"scheme": id or name, "taggers": [id or name, …]}, both optional;
    names become ids, and an unknown scheme or tagger is refused (docs/intake.md#on-arrival)."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise DomainError(
            'on_arrival: an object like {"scheme": …, "taggers": […]}.',
            code="intake.bad_on_arrival",
            details={"field": "on_arrival"},
        )
    unknown = set(raw) - {"scheme", "taggers"}
    if unknown:
        raise DomainError(
            f"on_arrival: unknown keys {', '.join(sorted(unknown))}; use scheme and taggers.",
            code="intake.bad_on_arrival",
            details={"field": "on_arrival"},
        )
    clean: dict[str, Any] = {}
    scheme = raw.get("scheme")
    if scheme not in (None, ""):
        if isinstance(scheme, bool) or not isinstance(scheme, int | str) or len(str(scheme)) > 200:
            raise DomainError(
                "on_arrival.scheme: a tagging scheme id or name.",
                code="intake.bad_on_arrival",
                details={"field": "on_arrival"},
            )
        clean["scheme"] = scheme
    taggers = raw.get("taggers")
    if taggers not in (None, []):
        if (
            not isinstance(taggers, list)
            or len(taggers) > 50
            or any(isinstance(t, bool) or not isinstance(t, int | str) or len(str(t)) > 200 for t in taggers)
        ):
            raise DomainError(
                "on_arrival.taggers: a list of at most 50 tagger ids or names.",
                code="intake.bad_on_arrival",
                details={"field": "on_arrival"},
            )
        clean["taggers"] = list(dict.fromkeys(taggers))
    return on_arrival_resolve(clean)


def _planned(raw: Any, default: int) -> int:
    value = int_param(raw, field="planned_count", minimum=0, maximum=INT_MAX)
    return default if value is None else value


def _query_count(query: str) -> int:
    try:
        matches = search_queryset(q=query, viewer=None)
    except QueryError as exc:
        raise DomainError(
            f"query: {exc.message}", code="intake.bad_query", details={"field": "query"}
        ) from exc
    return len(matches.values_list("pk", flat=True)[: conf.query_max() + 1])


def _video(raw: Any, plan: Any) -> tuple[MediaItem, int]:
    video_id = int_param(raw, field="video", minimum=1)
    video = MediaItem.objects.filter(pk=video_id).first() if video_id else None
    if video is None:
        raise DomainError("video: the id of a video in the library.", code="intake.unknown_video")
    params = frames_request_clean(video=video, raw=plan)
    return video, expected_frames(params, (video.duration_ms or 0) / 1000)


def _archive_store(archive: IO[bytes]) -> tuple[str, str, int]:
    """Check the zip as bulk upload does, keep it in storage; (key, name, members)."""
    members = archives.archive_members(archive)
    name = Path(getattr(archive, "name", "") or "archive.zip").name[:200]
    archive.seek(0)
    key = default_storage.save(f"intake/{secrets.token_hex(8)}.zip", archive)
    return key, name, len(members)


def _summary(entry: IntakeEntry) -> str:
    if entry.kind == IntakeEntry.Kind.URLS:
        more = len(entry.urls) - 1
        return str(entry.urls[0])[:200] + (f" and {more} more" if more else "")
    if entry.kind == IntakeEntry.Kind.ARCHIVE:
        return entry.archive_name
    if entry.kind == IntakeEntry.Kind.FOLDER:
        return entry.folder
    if entry.kind == IntakeEntry.Kind.VIDEO:
        return f"frames of video {entry.video_id}"
    return f"query {entry.query}"


def intake_entry_create(
    *,
    kind: str,
    dataset: Any,
    subset: Any = None,
    title: str = "",
    notes: str = "",
    planned_count: Any = None,
    urls: Any = None,
    archive: IO[bytes] | None = None,
    folder: str = "",
    video: Any = None,
    frame_plan: Any = None,
    query: str = "",
    on_arrival: Any = None,
    created_by: Any = None,
) -> IntakeEntry:
    """Plan one entry. What it takes is checked now (URL shapes, the zip, the folder inside the
    root, the frame plan against the video, the query); nothing is fetched until it is processed.
    """
    target, part = target_resolve(dataset=dataset, subset=subset)
    entry = IntakeEntry(
        kind=kind,
        dataset=target,
        subset=part,
        title=title or "",
        notes=notes or "",
        on_arrival=on_arrival_clean(on_arrival),
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    stored = ""
    if kind == IntakeEntry.Kind.URLS:
        entry.urls = urls_parse(urls)
        default = len(entry.urls)
    elif kind == IntakeEntry.Kind.ARCHIVE:
        if archive is None:
            raise DomainError(
                "archive: the zip to add.", code="intake.no_archive", details={"field": "archive"}
            )
        stored, entry.archive_name, default = _archive_store(archive)
        entry.archive_key = stored
    elif kind == IntakeEntry.Kind.FOLDER:
        path = folder_resolve(folder)
        entry.folder = str(path.relative_to(Path(conf.folder_root()).resolve())) or "."
        default = len(folder_files(path))
    elif kind == IntakeEntry.Kind.VIDEO:
        entry.video, default = _video(video, frame_plan)
        entry.frame_plan = frame_plan
    elif kind == IntakeEntry.Kind.QUERY:
        if not isinstance(query, str) or not query.strip():
            raise DomainError("query: the query whose items to add.", code="intake.bad_query")
        entry.query = query.strip()
        default = _query_count(entry.query)
    else:
        raise DomainError(
            f"kind: one of {', '.join(IntakeEntry.Kind.values)}.",
            code="intake.bad_kind",
            details={"field": "kind"},
        )
    try:
        entry.summary = _summary(entry)[:300]
        entry.planned_count = _planned(planned_count, default)
        with transaction.atomic():
            entry.full_clean()
            entry.save()
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return entry


@transaction.atomic
def intake_entries_bulk_add(
    *,
    dataset: Any,
    urls: Any,
    subset: Any = None,
    split: bool = False,
    notes: str = "",
    on_arrival: Any = None,
    created_by: Any = None,
) -> list[IntakeEntry]:
    """A pasted URL list as one entry, or one entry per URL (`split`); all or nothing."""
    clean = urls_parse(urls)
    groups = [[url] for url in clean] if split else [clean]
    return [
        intake_entry_create(
            kind=IntakeEntry.Kind.URLS,
            dataset=dataset,
            subset=subset,
            urls=group,
            notes=notes,
            on_arrival=on_arrival,
            created_by=created_by,
        )
        for group in groups
    ]


@transaction.atomic
def intake_entry_update(*, entry: IntakeEntry, **fields: Any) -> IntakeEntry:
    """Change the title, notes, planned count or on-arrival choice (any state)."""
    locked = IntakeEntry.objects.select_for_update().get(pk=entry.pk)
    unknown = set(fields) - set(_EDITABLE)
    if unknown:
        raise DomainError(
            f"Only {', '.join(_EDITABLE)} can change; plan a new entry for the rest.",
            code="intake.not_editable",
        )
    if "planned_count" in fields:
        locked.planned_count = _planned(fields["planned_count"], locked.planned_count)
    if "on_arrival" in fields:
        locked.on_arrival = on_arrival_clean(fields["on_arrival"])
    for name in ("title", "notes"):
        if name in fields:
            setattr(locked, name, fields[name] or "")
    locked.full_clean()
    locked.save()
    return locked


@transaction.atomic
def intake_entry_delete(*, entry: IntakeEntry) -> None:
    """Forget an entry (items that arrived stay in the library and the dataset). Refused while
    its job runs."""
    locked = IntakeEntry.objects.select_for_update().get(pk=entry.pk)
    if locked.state == IntakeEntry.State.FETCHING:
        raise ConflictError(
            f"Entry {locked.pk} is being fetched; cancel its job (#{locked.job_id}) first.",
            code="intake.busy",
        )
    locked.delete()  # its kept zip goes after commit (receivers.entry_deleted)


def intake_archive_forget(*, key: str) -> None:
    """Delete a kept zip once the transaction that dropped its entry commits."""
    transaction.on_commit(lambda: default_storage.delete(key))
