"""The one builder for media items in tests: a real file through the real ingest service.

Tags tests build on it (tests/tags/factories.py); it never imports anything from tests/tags.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from apps.media.models import MediaItem
from apps.media.services import Origin, media_ingest, metadata_clean
from tests import mediafiles


def make_item(
    tags: Sequence[str] | None = None,
    *,
    seed: int = 0,
    fmt: str = "png",
    size: tuple[int, int] = (32, 32),
    tag_source: str = "danbooru",
    filename: str | None = None,
    data: bytes | None = None,
    path: Path | None = None,
    added_by: Any = None,
    **metadata: Any,
) -> MediaItem:
    """Ingest one item as an upload and return it (an existing item when the bytes repeat).

    The file is a picture from tests/mediafiles.py (`fmt`, `size`, `seed`: distinct seeds give
    distinct files), or the given `data` bytes, or the file at `path` (a video, say). `tags`
    arrive as a source set from `tag_source`; `metadata` is the rest of what an uploader may
    say (`name`, `source`, `artist`). The original filename defaults to `pic<seed>.<fmt>` for a
    made picture, the file's own name for `path`, none for `data`.
    """
    if tags:
        metadata = {**metadata, "tags": list(tags), "tag_source": tag_source}
    stream: IO[bytes]
    if path is not None:
        stream, default_name = path.open("rb"), path.name
    elif data is not None:
        stream, default_name = io.BytesIO(data), ""
    else:
        picture = mediafiles.image_bytes(fmt, size=size, seed=seed)
        stream, default_name = io.BytesIO(picture), f"pic{seed}.{fmt}"
    with stream:
        return media_ingest(
            stream=stream,
            origin=Origin(kind="upload", original_filename=default_name if filename is None else filename),
            metadata=metadata_clean(**metadata),
            added_by=added_by,
        ).item


class WorkerKilled(BaseException):
    """Raised by `job_items_record_dying`: a worker dying mid-job (not an Exception, so no
    handler in the job turns it into a recorded failure)."""


def job_items_record_dying(monkeypatch: Any, *, on_call: int) -> Callable[[], None]:
    """Make the `on_call`-th `job_items_record` call die as a killed worker would, after the
    calls before it went through; returns a function that puts the real one back."""
    from apps.jobs import services as job_services

    real = job_services.job_items_record
    calls = {"n": 0}

    def dying(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == on_call:
            raise WorkerKilled
        return real(**kwargs)

    monkeypatch.setattr(job_services, "job_items_record", dying)
    return lambda: monkeypatch.setattr(job_services, "job_items_record", real)
