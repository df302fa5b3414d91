"""Re-measure stored items from their originals, for items an older probe measured
(docs/operations.md#re-hashing-and-re-probing): thumbnails and perceptual hashes of 16-bit
images (once clipped to white), and animated GIF/WebP stored as images (now videos).

Works in keyset batches of ids, one bulk UPDATE per batch; `after_id` resumes where a run
stopped.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet

from apps.core.exceptions import DomainError
from apps.media import conf
from apps.media.formats import ANIMATION_FORMATS, PIL_FORMATS
from apps.media.models import MediaItem
from apps.media.phash import phash_bands, phash_to_signed
from apps.media.services import probe, storage
from apps.media.services.animation import animation_timing

DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


@dataclass(frozen=True)
class RehashBatch:
    """One batch's outcome: how many items were re-measured and the last id looked at."""

    done: int
    failed: list[tuple[int, str]]
    last_id: int


def rehash_candidates(*, everything: bool = False) -> QuerySet[MediaItem]:
    """Items a re-hash covers: deep (16/32-bit) images by default, every Pillow-read item with
    `everything` (videos keep their ffmpeg poster)."""
    readable = MediaItem.objects.filter(format__in=list(PIL_FORMATS))
    readable = readable.exclude(Q(kind=MediaItem.Kind.VIDEO) & ~Q(format__in=["gif", "webp"]))
    return readable if everything else readable.filter(mode__in=DEEP_MODES)


@contextmanager
def _local(item: MediaItem) -> Iterator[Path]:
    try:
        yield Path(default_storage.path(item.storage_key))
        return
    except NotImplementedError:
        pass
    with (
        default_storage.open(item.storage_key, "rb") as source,
        tempfile.NamedTemporaryFile(prefix="bt-rehash-", suffix=f".{item.format}") as target,
    ):
        shutil.copyfileobj(source, target, 1024 * 1024)
        target.flush()
        yield Path(target.name)


def _remeasure(item: MediaItem, thumb_size: int) -> None:
    """New thumbnail (replacing the stored one) and hash fields on `item` (not saved)."""
    with _local(item) as path:
        probed = probe.probe_image(path, item.format, thumb_size=thumb_size)
    assert probed.thumbnail is not None
    assert probed.phash is not None
    key = item.thumbnail_key or storage.thumbnail_key(item.sha256)
    default_storage.delete(key)
    storage.store_thumbnail(key, probed.thumbnail)
    item.thumbnail_key = key
    item.phash = phash_to_signed(probed.phash)
    item.phash_b0, item.phash_b1, item.phash_b2, item.phash_b3, item.phash_b4 = phash_bands(probed.phash)


def media_rehash_batch(*, after_id: int = 0, batch_size: int = 200, everything: bool = False) -> RehashBatch:
    """Re-measure the next `batch_size` candidates with id > `after_id`; one UPDATE per batch.

    A file that no longer decodes is reported in `failed` and keeps its old values.
    """
    items = list(rehash_candidates(everything=everything).filter(pk__gt=after_id).order_by("pk")[:batch_size])
    size = conf.thumbnail_size()
    changed, failed = [], []
    for item in items:
        try:
            _remeasure(item, size)
        except (DomainError, OSError) as exc:
            failed.append((item.pk, getattr(exc, "message", str(exc))))
        else:
            changed.append(item)
    with transaction.atomic():
        MediaItem.objects.bulk_update(
            changed,
            ["thumbnail_key", "phash", "phash_b0", "phash_b1", "phash_b2", "phash_b3", "phash_b4"],
            batch_size=batch_size,
        )
    return RehashBatch(done=len(changed), failed=failed, last_id=items[-1].pk if items else after_id)


def animation_candidates() -> QuerySet[MediaItem]:
    """Animated GIF and WebP stored as images before they were probed as videos."""
    return MediaItem.objects.filter(
        kind=MediaItem.Kind.IMAGE, animated=True, format__in=list(ANIMATION_FORMATS)
    )


def media_reprobe_animations_batch(*, after_id: int = 0, batch_size: int = 200) -> RehashBatch:
    """Make the next `batch_size` animated GIF/WebP images videos, timed by their frame delays
    (their thumbnail and hash, from the first frame, stay); one UPDATE per batch."""
    items = list(animation_candidates().filter(pk__gt=after_id).order_by("pk")[:batch_size])
    changed, failed = [], []
    for item in items:
        try:
            with _local(item) as path:
                timing = animation_timing(path, item.format)
        except (DomainError, OSError) as exc:
            failed.append((item.pk, getattr(exc, "message", str(exc))))
            continue
        item.kind, item.codec = MediaItem.Kind.VIDEO, item.format
        item.duration_ms, item.fps_milli = timing.duration_ms, timing.fps_milli
        item.frame_count = len(timing.delays_ms)
        changed.append(item)
    with transaction.atomic():
        MediaItem.objects.bulk_update(
            changed, ["kind", "codec", "duration_ms", "fps_milli", "frame_count"], batch_size=batch_size
        )
    return RehashBatch(done=len(changed), failed=failed, last_id=items[-1].pk if items else after_id)
