"""Frame capture from videos: one streaming ffmpeg per job, constant memory, exact provenance.

The frames come from `frame_stream.py` (ffmpeg's PNGs over a pipe, or Pillow for animated GIF
and WebP, exact by index). Every frame becomes an image item of kind `frame` that remembers its
video, time relative to the stream start, frame index and box; the same time and box captured
again returns the same frame. Frames are measured on a thread of their own and stored in
batches, one transaction per batch with its job records (docs/architecture.md#media-pipelines).
Progress counts frames; the position in the video goes in the job's `result`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image

from apps.core import spool
from apps.core.exceptions import DomainError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job, JobItem
from apps.media import conf, events
from apps.media.models import MediaItem, VideoFrame
from apps.media.services import probe, storage
from apps.media.services.batch import DerivedInput, internal_error, media_ingest_derived_many
from apps.media.services.frame_requests import (
    MAX_FRAMES,
    MODES,
    Box,
    FrameRequestError,
    frames_request_clean,
)
from apps.media.services.frame_stream import RawFrame, frames_of
from apps.media.services.ingest import Derived, IngestResult, Origin, derived_name

logger = logging.getLogger(__name__)

__all__ = ["MAX_FRAMES", "MODES", "Box", "FrameRequestError", "frames_request_clean"]

JOB_KIND = "media.frames"
TASK_NAME = "media.frames_extract"


def media_frames_extract_start(*, video: MediaItem, request: Any, added_by: Any = None) -> Job:
    """Validate a capture request and queue the extraction job (media queue)."""
    params = frames_request_clean(video=video, raw=request)
    total = expected_frames(params, (video.duration_ms or 0) / 1000)
    return job_services.job_start(
        title="Frame capture", kind=JOB_KIND, task=TASK_NAME, params=params, created_by=added_by, total=total
    )


def expected_frames(params: dict[str, Any], duration: float) -> int:
    """How many frames the request captures, as far as is known before decoding (progress is
    counted in frames; scene changes and keyframes are known only at the end: 0 until then)."""
    mode = params["mode"]
    if mode == "timestamps":
        return len(params["timestamps"])
    if mode == "count":
        return int(params["count"])
    if mode == "interval":
        return min(MAX_FRAMES, max(1, math.ceil(duration / params["interval"] - 1e-6)))
    return 0


# --- storing frames -----------------------------------------------------------------------
#
# The job runs on three threads (docs/architecture.md#media-pipelines): the pipe's reader
# decodes ffmpeg's PNGs; the preparer (`_Preparer`) runs the frame source and measures each
# frame (skip-similar hash, 256 px thumbnail, phash, WebP, SHA-256) without the database; the
# job's own thread stores the frames in batches of up to FLUSH_FRAMES, each batch one
# transaction with its job records, so ffmpeg and the pixel work go on while rows are written.

FLUSH_FRAMES = 12  # frames stored in one transaction at most (memory: two batches of PNGs)
FLUSH_SECONDS = 0.5  # a batch is stored once its first frame has waited this long
HEARTBEAT = 1.0  # seconds between progress (position) updates and cancel checks


@dataclass
class _Prepared:
    """A frame ready to store: measured, hashed and its thumbnail encoded."""

    pts_time: float
    timestamp_ms: int
    frame_index: int
    box: Box  # the stored part of the picture: the asked box, or the whole frame
    name: str
    spooled: storage.Spooled
    probed: probe.Probe
    thumbnail: bytes


@dataclass
class _Ready:
    """One input of the job from the preparer: a frame to store, an outcome to record (skipped,
    no frame at that time), or neither (already done in an earlier attempt: its position only)."""

    seq: int
    label: str
    position_ms: int
    frame: _Prepared | None = None
    outcome: job_services.ItemOutcome | None = None
    capped: bool = False  # MAX_FRAMES reached: the job stops here


def _prepare(video: MediaItem, raw: RawFrame, box: Box | None, thumb_size: int) -> _Prepared:
    """Measure one frame for storing (no database: runs on the preparer thread). Consumes
    `raw.image`: it is shrunk in place into the thumbnail (ffmpeg's frames come shrunk)."""
    timestamp_ms = max(0, round(raw.pts_time * 1000))
    width, height = raw.size
    full = box or Box(0, 0, width, height)
    fps = (video.fps_milli or 0) / 1000
    frame_index = raw.index if raw.index is not None else (round(timestamp_ms / 1000 * fps) if fps else 0)
    mode = raw.image.mode
    thumbnail = raw.image
    thumbnail.thumbnail((thumb_size,) * 2, Image.Resampling.LANCZOS, reducing_gap=2.0)
    probed = probe.Probe(
        kind="image",
        format="png",
        width=width,
        height=height,
        mode=mode,
        bit_depth=8,
        has_alpha=mode == "RGBA",
        thumbnail=thumbnail,
        phash=probe.phash64(thumbnail),
    )
    what = f"frame {frame_index} at {timestamp_ms / 1000:.3f} s"
    if box:
        what += f", box {box.w}×{box.h} at {box.x},{box.y}"
    return _Prepared(
        pts_time=raw.pts_time,
        timestamp_ms=timestamp_ms,
        frame_index=frame_index,
        box=full,
        name=derived_name(video.name, what),
        spooled=storage.in_memory(raw.png),
        probed=probed,
        thumbnail=storage.thumbnail_bytes(thumbnail),
    )


def _stream_inputs(
    video: MediaItem,
    path: Path,
    params: dict[str, Any],
    box: Box | None,
    done: set[int],
    stop: threading.Event,
) -> Iterator[_Ready]:
    """The selected frames of a streaming capture, prepared; progress is in frames."""
    last_hash: int | None = None
    skip = params.get("skip_similar")
    thumb_size = conf.thumbnail_size()
    for seq, raw in enumerate(frames_of(path, video, params=params, stop=stop)):
        position_ms = max(0, round(raw.pts_time * 1000))
        if seq >= MAX_FRAMES:
            yield _Ready(seq=seq, label="", position_ms=position_ms, capped=True)
            return
        label = f"t={position_ms / 1000:g}s"
        if seq in done:
            yield _Ready(seq=seq, label=label, position_ms=position_ms)
            continue
        if skip is not None:
            small = raw.image.copy()
            small.thumbnail((64, 64))
            current = probe.phash64(small)
            if last_hash is not None and _hamming(current, last_hash) <= skip:
                outcome = job_services.ItemOutcome(seq=seq, input=label, status=JobItem.Status.SKIPPED)
                yield _Ready(seq=seq, label=label, position_ms=position_ms, outcome=outcome)
                continue
            last_hash = current
        yield _Ready(
            seq=seq, label=label, position_ms=position_ms, frame=_prepare(video, raw, box, thumb_size)
        )


def _timestamp_inputs(
    video: MediaItem,
    path: Path,
    params: dict[str, Any],
    box: Box | None,
    done: set[int],
    stop: threading.Event,
) -> Iterator[_Ready]:
    """One seek per asked time: its first frame at or after it, prepared, or a failed outcome."""
    thumb_size = conf.thumbnail_size()
    for seq, seconds in enumerate(params["timestamps"]):
        if seq in done:
            continue
        if stop.is_set():
            return
        label = f"t={seconds:g}s"
        frames = list(frames_of(path, video, params=params, seek=seconds))
        position_ms = max(0, round(seconds * 1000))
        if not frames:
            error = DomainError(
                f"No frame at or after {seconds:g} s (past the last frame).",
                code="media.timestamp_out_of_range",
            )
            outcome = job_services.ItemOutcome(
                seq=seq, input=label, status=JobItem.Status.FAILED, error=error
            )
            yield _Ready(seq=seq, label=label, position_ms=position_ms, outcome=outcome)
            continue
        yield _Ready(
            seq=seq, label=label, position_ms=position_ms, frame=_prepare(video, frames[0], box, thumb_size)
        )


_END = object()


class _Preparer:
    """Runs a job's input source (`_stream_inputs`, `_timestamp_inputs`) on its own thread,
    queueing at most FLUSH_FRAMES prepared inputs: the pixel work of the next batch overlaps the
    rows of this one. Nothing here touches the database. `stop()` ends it and its ffmpeg."""

    def __init__(self, source: Any) -> None:  # source(stop) -> Iterator[_Ready]
        self.stop_event = threading.Event()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=FLUSH_FRAMES)
        self.error: BaseException | None = None
        self._source = source
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stop_event.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        inputs = self._source(self.stop_event)
        try:
            for ready in inputs:
                if not self._put(ready):
                    break
        except BaseException as exc:  # handed to the job's thread at the end of the inputs
            self.error = exc
        finally:
            inputs.close()  # ends ffmpeg when the job stopped early
            self._put(_END)

    def get(self, timeout: float) -> Any:
        """The next _Ready, _END after the last one, or None when nothing came within `timeout`."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join()


def _captured(video: MediaItem, frames: list[_Prepared]) -> dict[tuple[int, Box], int]:
    """The batch's frames already captured (same time and box): one id-only read per batch."""
    rows = VideoFrame.objects.filter(
        video=video, timestamp_ms__in={f.timestamp_ms for f in frames}
    ).values_list("timestamp_ms", "crop_x", "crop_y", "crop_w", "crop_h", "media_item_id")
    return {(ts, Box(x, y, w, h)): item_id for ts, x, y, w, h, item_id in rows}


def _captures_insert(
    video: MediaItem, job: Job | None, frames: list[_Prepared], items: list[MediaItem]
) -> None:
    rows = [
        VideoFrame(
            video=video,
            media_item=item,
            frame_index=f.frame_index,
            timestamp_ms=f.timestamp_ms,
            pts_time=f.pts_time,
            crop_x=f.box.x,
            crop_y=f.box.y,
            crop_w=f.box.w,
            crop_h=f.box.h,
            extraction_job=job,
        )
        for f, item in zip(frames, items, strict=True)
    ]
    try:
        with transaction.atomic():
            VideoFrame.objects.bulk_create(rows)
    except IntegrityError:  # a concurrent capture of some of these frames and boxes won
        for row in rows:
            try:
                with transaction.atomic():
                    row.save()
            except IntegrityError:
                pass  # theirs: same content either way


def _store_batch(job: Job, video: MediaItem, batch: list[_Ready], user: Any) -> None:
    """Store a batch of frames and record every input of it, all in one transaction: frames
    already captured (same time and box) are duplicates; the rest go through
    `media_ingest_derived_many` (items, sources, files), then their `VideoFrame` rows, the
    video's tags inherited at once, and the batch's job records."""
    outcomes = {r.seq: r.outcome for r in batch if r.outcome is not None}
    frames = [r for r in batch if r.frame is not None]
    hits = _captured(video, [r.frame for r in frames if r.frame is not None])
    new: list[tuple[_Ready, _Prepared]] = []
    for r in frames:
        assert r.frame is not None
        hit = hits.get((r.frame.timestamp_ms, r.frame.box))
        if hit is not None:
            outcomes[r.seq] = job_services.ItemOutcome(
                seq=r.seq, input=r.label, status=JobItem.Status.DUPLICATE, object_id=hit
            )
        else:
            new.append((r, r.frame))

    def within(results: list[IngestResult]) -> None:
        _captures_insert(video, job, [f for _, f in new], [result.item for result in results])
        unique = list({result.item.pk: result.item for result in results}.values())
        events.send_items_derived(pairs=[(item, video) for item in unique], relation="video")
        for (r, _), result in zip(new, results, strict=True):
            status = JobItem.Status.DUPLICATE if result.duplicate else JobItem.Status.CREATED
            outcomes[r.seq] = job_services.ItemOutcome(
                seq=r.seq, input=r.label, status=status, object_id=result.item.pk
            )
        job_services.job_items_record(job=job, outcomes=[outcomes[seq] for seq in sorted(outcomes)])

    if not new:
        with transaction.atomic():
            within([])
        return
    origin_job = job.pk if job else None
    media_ingest_derived_many(
        inputs=[
            DerivedInput(
                spooled=f.spooled,
                probed=f.probed,
                thumbnail=f.thumbnail,
                origin=Origin(
                    kind="frame",
                    original_filename=f"{video.name}@{f.timestamp_ms}ms",
                    import_job_id=origin_job,
                ),
                derived=Derived(
                    kind="frame",
                    video_id=video.pk,
                    timestamp_ms=f.timestamp_ms,
                    frame_index=f.frame_index,
                    box=(f.box.x, f.box.y, f.box.w, f.box.h),
                    name=f.name,
                    artist=video.artist,
                    source=video.source,
                ),
            )
            for _, f in new
        ],
        added_by=user,
        within=within,
    )


def _store(job: Job, video: MediaItem, batch: list[_Ready], user: Any) -> None:
    """`_store_batch`; if the batch fails (its files are gone with it), its inputs are stored
    again one at a time, so one frame's failure is recorded for that frame alone."""
    try:
        _store_batch(job, video, batch, user)
        return
    except JobSuperseded:
        raise
    except Exception as exc:
        if len(batch) == 1:
            _record_failure(job, batch[0], exc)
            return
        logger.exception("frames job %s: a batch failed; its frames are stored one at a time", job.pk)
    for ready in batch:
        try:
            _store_batch(job, video, [ready], user)
        except JobSuperseded:
            raise
        except Exception as exc:
            _record_failure(job, ready, exc)


def _record_failure(job: Job, ready: _Ready, exc: Exception) -> None:
    if isinstance(exc, DomainError):
        error = exc
    else:
        logger.exception("frames job %s: frame %s failed", job.pk, ready.seq, exc_info=exc)
        error = internal_error()
    job_services.job_item_record(
        job=job, seq=ready.seq, input=ready.label, status=JobItem.Status.FAILED, error=error
    )


def _hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def media_frames_extract_run(*, job_id: int) -> None:
    """Capture the job's frames; one JobItem per captured (or skipped) frame. Resumable."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    params = job.params
    video = MediaItem.objects.filter(pk=params["video_id"], kind=MediaItem.Kind.VIDEO).first()
    if video is None:
        job_services.job_fail(job=job, code="media.not_found", message="The video was deleted.")
        return
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    box = Box(*params["box"]) if params.get("box") else None
    done = job_services.job_done_seqs(job=job)
    try:
        with _local_copy(video) as path:
            if params["mode"] == "timestamps":
                _capture(
                    job,
                    video,
                    lambda stop: _timestamp_inputs(video, path, params, box, done, stop),
                    user,
                    False,
                )
            else:
                _run_stream(job, video, path, params, box, done, user)
    except DomainError as err:
        job_services.job_fail(job=job, code=err.code, message=err.message)
        return
    finished = Job.objects.get(pk=job.pk)
    job_services.job_finish(job=job, result={**finished.result, "counts": finished.counts})


def _position(position_ms: int, duration_ms: int) -> dict[str, Any]:
    """Where in the video the capture is, shown beside the frame count (job `result`)."""
    return {
        "position_ms": position_ms,
        "duration_ms": duration_ms,
        "position": f"{position_ms / 1000:.3f} s of {duration_ms / 1000:.3f} s",
    }


def _capture(job: Job, video: MediaItem, source: Any, user: Any, positions: bool) -> tuple[Job, bool]:
    """Store the prepared inputs of `source` in batches: a batch is stored when it holds
    FLUSH_FRAMES inputs, when its first input has waited FLUSH_SECONDS, or as soon as nothing more
    is ready within that time (a slow decode never holds frames back). With `positions`, the
    position in the video goes in the job's `result` every HEARTBEAT. Returns the job and whether
    every input was handled (False: cancelled). An error of the source (ffmpeg failed) is raised
    after the inputs before it are stored."""
    preparer = _Preparer(source)
    duration_ms = video.duration_ms or 0
    pending: list[_Ready] = []
    since = last_beat = 0.0
    position_ms = 0
    try:
        while True:
            wait = HEARTBEAT if not pending else max(0.0, since + FLUSH_SECONDS - time.monotonic())
            ready = preparer.get(wait)
            if ready is _END:
                break
            if ready is not None:
                position_ms = ready.position_ms
                if ready.capped:
                    job_services.job_log(job=job, line=f"Stopped at {MAX_FRAMES} frames.")
                    break
                if ready.frame is not None or ready.outcome is not None:
                    if not pending:
                        since = time.monotonic()
                    pending.append(ready)
            if pending and (
                ready is None or len(pending) >= FLUSH_FRAMES or time.monotonic() - since >= FLUSH_SECONDS
            ):
                _store(job, video, pending, user)
                pending = []
                if job.cancel_requested:
                    return job, False
            if positions and time.monotonic() - last_beat > HEARTBEAT:
                job = job_services.job_progress(job=job, result=_position(position_ms, duration_ms))
                last_beat = time.monotonic()
                if job.cancel_requested:
                    return job, False
        if pending:
            _store(job, video, pending, user)
        if preparer.error is not None:
            raise preparer.error
        return job, True
    finally:
        preparer.stop()


def _run_stream(
    job: Job, video: MediaItem, path: Path, params: dict[str, Any], box: Box | None, done: set[int], user: Any
) -> None:
    """Progress is in frames (created, duplicate or skipped); the position goes in `result`."""
    duration_ms = video.duration_ms or 0
    job, complete = _capture(
        job, video, lambda stop: _stream_inputs(video, path, params, box, done, stop), user, True
    )
    if not complete:
        return
    job = job_services.job_progress(job=job, result=_position(duration_ms, duration_ms))
    # Now the number of frames is known exactly (scene changes and keyframes were 0 until now).
    job_services.job_progress(job=job, total=job.progress_done)


class _local_copy:
    """The video as a local path: the storage path when local, else a temporary download."""

    def __init__(self, video: MediaItem) -> None:
        self.video = video
        self.temp: Path | None = None

    def __enter__(self) -> Path:
        try:
            return Path(default_storage.path(self.video.storage_key))
        except NotImplementedError:
            import shutil

            with (
                default_storage.open(self.video.storage_key, "rb") as source,
                spool.spool_file(prefix="bt-video-", suffix=f".{self.video.format}") as target,
            ):
                shutil.copyfileobj(source, target, 1024 * 1024)
            self.temp = Path(target.name)
            return self.temp

    def __exit__(self, *exc: object) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
