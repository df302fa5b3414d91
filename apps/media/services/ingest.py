"""The one ingest path every entry point uses: upload, zip member, URL."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from apps.core.exceptions import DomainError
from apps.jobs.exceptions import JobSuperseded
from apps.media import conf, events
from apps.media.exceptions import MediaUnsupportedError
from apps.media.models import MediaItem, MediaSource
from apps.media.phash import phash_bands, phash_to_signed
from apps.media.services import probe, storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where incoming bytes came from; becomes a MediaSource row."""

    kind: str
    url: str = ""
    archive_member: str = ""
    original_filename: str = ""
    import_job_id: int | None = None
    # Which input of the import job this is: with the job, it makes attaching idempotent.
    import_seq: int | None = None


@dataclass(frozen=True)
class Metadata:
    """What the uploader says about a file, already validated (see `metadata_clean`)."""

    name: str = ""
    source: str = ""
    artist: str = ""
    tags: tuple[str, ...] = ()
    tag_source: str = ""


@dataclass(frozen=True)
class Derived:
    """Lineage of an item made from another: a transform result or a captured video frame."""

    kind: str = "image"
    parent_id: int | None = None
    recipe: dict[str, Any] | None = None
    recipe_hash: str = ""
    video_id: int | None = None
    timestamp_ms: int | None = None
    frame_index: int | None = None
    box: tuple[int, int, int, int] | None = None
    # What the result keeps of its parent or video (docs/architecture.md#storage).
    name: str = ""
    artist: str = ""
    source: str = ""


def derived_name(parent_name: str, what: str) -> str:
    """ "scan — crop 1:1, 512 px, webp": the parent's name without its extension, then `what`."""
    path = PurePosixPath(parent_name)
    stem = path.stem if path.suffix and len(path.suffix) <= 6 and path.stem else parent_name
    return f"{stem} — {what}"[:255]


@dataclass(frozen=True)
class IngestResult:
    item: MediaItem
    duplicate: bool


# Called with the result inside the transaction that writes the item's rows, so a job records
# the input's outcome (fenced, apps/jobs/services/attempts.py) in the same step.
Within = Callable[[IngestResult], None]


_BIDI_OVERRIDES = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _has_control(text: str) -> bool:
    """Control characters, lone surrogates and bidi overrides (which disguise names)."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_OVERRIDES for ch in text)


def _clean_text(value: Any, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DomainError(f"{field} must be text.", code="media.invalid_metadata", details={"field": field})
    value = unicodedata.normalize("NFC", value).strip()
    if _has_control(value):
        raise DomainError(
            f"{field} contains control characters; remove them and try again.",
            code="media.invalid_metadata",
            details={"field": field},
        )
    if len(value) > max_length:
        raise DomainError(
            f"{field} is {len(value):,} characters long; at most {max_length} are allowed.",
            code="media.invalid_metadata",
            details={"field": field, "max_length": max_length},
        )
    return value


def metadata_clean(
    *,
    name: Any = "",
    source: Any = "",
    artist: Any = "",
    tags: Sequence[Any] | None = None,
    tag_source: Any = "",
) -> Metadata:
    """Validate uploader metadata; raises DomainError naming the field to fix."""
    clean_tags: tuple[str, ...] = ()
    tag_source = _clean_text(tag_source, field="tag_source", max_length=200)
    if tags:
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise DomainError(
                "tags must be a list of strings.", code="media.invalid_metadata", details={"field": "tags"}
            )
        if not tag_source:
            raise DomainError(
                "tag_source is required when tags are given: say where the tags came from "
                "(for example 'danbooru' or the page URL).",
                code="media.tag_source_required",
                details={"field": "tag_source"},
            )
        clean_tags = events.arrival_tags_cleaned(tags=list(tags))
    return Metadata(
        name=_clean_text(name, field="name", max_length=255),
        source=_clean_text(source, field="source", max_length=2000),
        artist=_clean_text(artist, field="artist", max_length=200),
        tags=clean_tags,
        tag_source=tag_source,
    )


def _safe_filename(raw: str) -> str:
    base = PurePosixPath(raw.replace("\\", "/")).name
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if not _has_control(ch))
    return base.strip()[:255]


def _site(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return (parts.hostname or "")[:255] if parts.scheme in ("http", "https") else ""


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest() if url else ""


def unsupported_error(head: bytes) -> MediaUnsupportedError:
    """The refusal for bytes `probe.sniff` does not recognise (an archive gets its own)."""
    if head.startswith(probe.ARCHIVE_MAGIC):
        return MediaUnsupportedError(
            "This is an archive; upload it through bulk upload (upload-bulk) instead.",
            code="media.archive_not_allowed_here",
        )
    return MediaUnsupportedError(
        "The file is not an image or video format Baggintag reads (jpg, png, gif, webp, "
        "bmp, tiff, avif, heic, mp4, mov, webm, mkv, avi, wmv, vob).",
    )


def _existing(sha256: str) -> MediaItem | None:
    """The item with these bytes, if any. Asks for the id first (a narrow, unordered index read:
    about a third of the cost of `.first()` on the wide row) and loads the row only on a hit."""
    ids = list(MediaItem.objects.filter(sha256=sha256).values_list("pk", flat=True)[:1])
    return MediaItem.objects.get(pk=ids[0]) if ids else None


def media_ingest(
    *,
    stream: IO[bytes],
    origin: Origin,
    metadata: Metadata,
    added_by: Any = None,
    within: Within | None = None,
) -> IngestResult:
    """Store one file: sniff, probe, dedupe by sha256, thumbnail, rows; nothing left on error.

    A file already in the library gains a MediaSource (and a source tag set when tags came
    with it) and is returned with `duplicate=True`. File work happens before the one short
    transaction that writes the rows (and runs `within`).
    """
    spooled = storage.spool(stream)
    try:
        existing = _existing(spooled.sha256)
        if existing is not None:
            result = IngestResult(item=existing, duplicate=True)
            _attach_origin(existing, origin, metadata, added_by, within=within, result=result)
            return result
        sniffed = probe.sniff(spooled.head)
        if sniffed is None:
            raise unsupported_error(spooled.head)
        kind, fmt = sniffed
        size = conf.thumbnail_size()
        probed = (probe.probe_image if kind == "image" else probe.probe_video)(
            storage.spooled_path(spooled), fmt, thumb_size=size
        )
        return _store_new(spooled, probed, origin, metadata, added_by, within=within)
    finally:
        storage.unspool(spooled)


def media_ingest_derived(
    *,
    data: bytes,
    probed: probe.Probe,
    origin: Origin,
    derived: Derived,
    metadata: Metadata | None = None,
    added_by: Any = None,
) -> IngestResult:
    """Store bytes this process just encoded (a transform result or a frame), already measured.

    Skips sniffing and decoding: `probed` (with its thumbnail) comes from the encoder. Same
    bytes as an existing item return that item with `duplicate=True`.
    """
    metadata = metadata or Metadata()
    spooled = storage.in_memory(data)  # written straight to its key: no spool file
    existing = _existing(spooled.sha256)
    if existing is not None:
        _attach_origin(existing, origin, metadata, added_by)
        return IngestResult(item=existing, duplicate=True)
    return _store_new(spooled, probed, origin, metadata, added_by, derived)


def _item_new(
    spooled: storage.Spooled,
    probed: probe.Probe,
    origin: Origin,
    metadata: Metadata,
    added_by: Any,
    derived: Derived | None,
    original: str,
    thumb: str,
) -> MediaItem:
    """The unsaved row for a new file: what the probe measured, what the uploader said, and for
    a derived item or frame its recipe, parent and inherited artist and source."""
    name = (
        metadata.name
        or _safe_filename(origin.original_filename or origin.archive_member)
        or f"{spooled.sha256[:12]}.{probed.extension}"
    )
    source = metadata.source or origin.url
    bands = phash_bands(probed.phash) if probed.phash is not None else [None] * 5
    item = MediaItem(
        kind=probed.kind,
        name=name,
        sha256=spooled.sha256,
        storage_key=original,
        thumbnail_key=thumb if probed.thumbnail is not None else "",
        format=probed.format,
        mime_type=probed.mime_type,
        size_bytes=spooled.size,
        width=probed.width,
        height=probed.height,
        pixels=probed.width * probed.height,
        ratio_milli=round(1000 * probed.width / probed.height) if probed.height else 0,
        mode=probed.mode,
        bit_depth=probed.bit_depth,
        has_alpha=probed.has_alpha,
        animated=probed.animated,
        frame_count=probed.frame_count,
        duration_ms=probed.duration_ms,
        fps_milli=probed.fps_milli,
        codec=probed.codec,
        phash=phash_to_signed(probed.phash) if probed.phash is not None else None,
        phash_b0=bands[0],
        phash_b1=bands[1],
        phash_b2=bands[2],
        phash_b3=bands[3],
        phash_b4=bands[4],
        source=source,
        source_hash=_url_hash(source),
        site=_site(source),
        artist=metadata.artist,
        rotation=probed.rotation,
        start_ms=probed.start_ms,
        added_by=added_by if added_by is not None and added_by.is_authenticated else None,
    )
    if derived is not None:
        box = derived.box or (None, None, None, None)
        item.kind = derived.kind
        item.parent_id, item.recipe = derived.parent_id, derived.recipe
        item.recipe_hash = derived.recipe_hash
        item.video_id, item.timestamp_ms = derived.video_id, derived.timestamp_ms
        item.frame_index = derived.frame_index
        item.box_x, item.box_y, item.box_w, item.box_h = box
        if derived.name and not metadata.name:
            item.name = derived.name
        if derived.source and not metadata.source:
            item.source, item.source_hash, item.site = (
                derived.source,
                _url_hash(derived.source),
                _site(derived.source),
            )
        item.artist = metadata.artist or derived.artist
    return item


def _store_new(
    spooled: storage.Spooled,
    probed: probe.Probe,
    origin: Origin,
    metadata: Metadata,
    added_by: Any,
    derived: Derived | None = None,
    within: Within | None = None,
) -> IngestResult:
    original = storage.original_key(spooled.sha256, probed.extension)
    thumb = storage.thumbnail_key(spooled.sha256)
    written: list[str] = []
    try:
        if storage.store_original(original, spooled):
            written.append(original)
        if probed.thumbnail is not None and storage.store_thumbnail(thumb, probed.thumbnail):
            written.append(thumb)
        item = _item_new(spooled, probed, origin, metadata, added_by, derived, original, thumb)
        try:
            with transaction.atomic():
                item.save()
                _attach(  # already in the transaction: no savepoint round trips
                    item,
                    origin,
                    metadata,
                    added_by,
                    within=within,
                    result=IngestResult(item=item, duplicate=False),
                )
        except IntegrityError:
            # Lost a race with a concurrent ingest of the same bytes: theirs is the item.
            winner = MediaItem.objects.filter(sha256=spooled.sha256).first()
            if winner is None:
                raise
            written.clear()  # the winner's row owns the files now
            result = IngestResult(item=winner, duplicate=True)
            _attach_origin(winner, origin, metadata, added_by, within=within, result=result)
            return result
    except JobSuperseded:
        # Another attempt of the same job owns this input now; it stores the same bytes under
        # the same content-addressed keys, so the files stay for it.
        raise
    except BaseException:
        storage.delete_keys(written)
        raise
    return IngestResult(item=item, duplicate=False)


def _attach(
    item: MediaItem,
    origin: Origin,
    metadata: Metadata,
    added_by: Any,
    *,
    within: Within | None = None,
    result: IngestResult | None = None,
) -> MediaSource:
    """Record this arrival (and, through `item_arrived`, its source tag set). Idempotent for a
    job's input: the same job and input seq attach once, however often the input is run."""
    if within is not None and result is not None:
        within(result)  # first: a superseded job attempt stops before writing anything
    if origin.import_job_id is not None and origin.import_seq is not None:
        again = MediaSource.objects.filter(
            media_item=item, import_job_id=origin.import_job_id, raw_metadata__job_input=origin.import_seq
        ).first()
        if again is not None:
            return again
    user = added_by if added_by is not None and added_by.is_authenticated else None
    row = source_row(item, origin, metadata, user)
    row.save()
    events.send_item_arrived(
        item=item, source=row, tags=metadata.tags, tag_source=metadata.tag_source, actor=user
    )
    return row


def source_row(item: MediaItem, origin: Origin, metadata: Metadata, user: Any) -> MediaSource:
    """The unsaved MediaSource row of one arrival (`user`: an authenticated user or None); the
    batched paths insert many at once (batch.py, transforms.py)."""
    url = origin.url or metadata.source
    raw: dict[str, Any] = {"name": metadata.name} if metadata.name else {}
    if origin.import_seq is not None:
        raw["job_input"] = origin.import_seq
    return MediaSource(
        media_item=item,
        kind=origin.kind,
        import_job_id=origin.import_job_id,
        url=url,
        url_hash=_url_hash(url),
        site=_site(url),
        archive_member=origin.archive_member[:1000],
        original_filename=_safe_filename(origin.original_filename),
        artist=metadata.artist,
        raw_metadata=raw,
        added_by=user,
    )


# Standalone (a duplicate), attaching is its own transaction; inside `_store_new`'s it is `_attach`.
_attach_origin = transaction.atomic(_attach)
