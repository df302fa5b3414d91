"""Frame capture from videos: one streaming ffmpeg per job, constant memory, exact provenance.

ffmpeg decodes (applying the container's rotation), selects, crops and writes the frames as RGB
PNGs to a pipe (its PNG encoder runs on its own threads, beside the decoder, out of Python's
way); `showinfo` reports each frame's presentation time on stderr. Every frame becomes an
image item of kind `frame` that remembers its video, time relative to the stream start, frame
index and box; the same time and box captured again returns the same frame. Animated GIF and
WebP are decoded by Pillow instead (`animation.py`), selected the same way, exact by index.
Progress counts frames; the position in the video goes in the job's `result`.
"""

from __future__ import annotations

import io
import logging
import math
import queue
import re
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image

from apps.core import spool
from apps.core.exceptions import DomainError, UnprocessableError
from apps.jobs import services as job_services
from apps.jobs.models import Job, JobItem
from apps.media import conf, events
from apps.media.models import MediaItem, VideoFrame
from apps.media.services import probe
from apps.media.services.animation import ANIMATION_FORMATS, stream_animation
from apps.media.services.frame_requests import (
    MAX_FRAMES,
    MODES,
    Box,
    FrameRequestError,
    frames_request_clean,
)
from apps.media.services.ingest import Derived, Origin, derived_name, media_ingest_derived

logger = logging.getLogger(__name__)

__all__ = ["MAX_FRAMES", "MODES", "Box", "FrameRequestError", "frames_request_clean"]

JOB_KIND = "media.frames"
TASK_NAME = "media.frames_extract"
SEEK_MARGIN = 3.0  # seconds decoded before a requested time, to land exactly on it
_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?\bpts_time:\s*(-?[\d.]+)")


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


# --- the ffmpeg stream --------------------------------------------------------------------


@dataclass
class RawFrame:
    pts_time: float
    image: Image.Image
    png: bytes  # `image` as stored: ffmpeg's PNG, rebuilt as IHDR, one IDAT and IEND
    index: int | None = None  # the frame's number when the decoder knows it (animations)


def _frames_of(
    path: Path, video: MediaItem, *, params: dict[str, Any], seek: float | None = None
) -> Iterator[RawFrame]:
    """The selected frames: Pillow for animated GIF and WebP, the ffmpeg stream for the rest."""
    if video.format in ANIMATION_FORMATS:
        duration = (video.duration_ms or 0) / 1000
        for frame in stream_animation(path, video.format, params=params, duration=duration, seek=seek):
            yield RawFrame(pts_time=frame.pts_time, image=frame.image, png=frame.png, index=frame.index)
        return
    yield from stream_frames(path, video, params=params, seek=seek)


def _select_expression(params: dict[str, Any], duration: float) -> str | None:
    mode = params["mode"]
    if mode in ("interval", "count"):
        step = params["interval"] if mode == "interval" else duration / params["count"]
        # The first frame at or after each multiple of `step` (like `-ss k*step`).
        return f"isnan(prev_selected_t)+gt(floor(t/{step:.6f}+1e-6),floor(prev_selected_t/{step:.6f}+1e-6))"
    if mode == "scene":
        return f"eq(n\\,0)+gt(scene\\,{params['threshold']:.4f})"
    return None


def _frame_size(video: MediaItem, box: Box | None) -> tuple[int, int]:
    return (box.w, box.h) if box else (video.width, video.height)


def stream_frames(
    path: Path,
    video: MediaItem,
    *,
    params: dict[str, Any],
    seek: float | None = None,
    stall_timeout: float | None = None,
) -> Iterator[RawFrame]:
    """Yield selected frames one at a time; kills ffmpeg when the caller stops or it stalls.

    Times are on ffmpeg's own timeline (the one `ffmpeg -ss T` uses): seconds from the start
    of the stream. With `seek`, only the first frame at or after that time is produced.
    """
    box = Box(*params["box"]) if params.get("box") else None
    width, height = _frame_size(video, box)
    filters = []
    args = ["-loglevel", "info"]
    if params["mode"] == "keyframes":
        args += ["-skip_frame", "nokey"]
    offset = 0.0
    if seek is not None:
        # Input seeking can land past the target (MPEG-PS/vob overshoots by a GOP), so seek a
        # margin early and let `select` drop the frames before the target. After an input
        # seek ffmpeg counts t from the seek point, hence the offset.
        offset = max(0.0, seek - SEEK_MARGIN)
        if offset:
            args += ["-ss", f"{offset:.6f}"]
    args += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn"]
    if seek is not None:
        filters.append(f"select=gte(t\\,{seek - offset - 0.0005:.6f})")
    elif (expression := _select_expression(params, (video.duration_ms or 0) / 1000)) is not None:
        filters.append(f"select='{expression}'")
    if box:
        filters.append(f"crop={box.w}:{box.h}:{box.x}:{box.y}")
    filters.append("showinfo")
    args += ["-vf", ",".join(filters), "-fps_mode", "passthrough"]
    if seek is not None:
        args += ["-frames:v", "1"]
    # zlib level 3 with adaptive row filters: what Pillow's compress_level=3 writes, as small.
    args += ["-pix_fmt", "rgb24", "-c:v", "png", "-compression_level", str(PNG_LEVEL), "-pred", "mixed"]
    args += ["-f", "image2pipe", "pipe:1"]
    cmd = [probe.ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", *args]
    stall_timeout = stall_timeout or conf.ffmpeg_timeout()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    times: queue.Queue[float | None] = queue.Queue()
    tail: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for raw_line in process.stderr:
            line = raw_line.decode("utf-8", "replace")
            if match := _SHOWINFO.search(line):
                times.put(float(match.group(2)))
            elif line.strip():
                tail[:] = [*tail[-4:], line.strip()]
        times.put(None)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    watchdog = _Watchdog(process, stall_timeout)
    # Frames are read and decoded on a thread, READ_AHEAD ahead of the caller: ffmpeg goes on
    # decoding while the caller stores a frame, instead of waiting on a full pipe.
    pipe = _FramePipe(process, (width, height), watchdog)
    try:
        while (frame := pipe.next()) is not None:
            try:
                pts_time = times.get(timeout=stall_timeout)
            except queue.Empty:
                pts_time = None
            if pts_time is None:
                raise UnprocessableError(
                    "ffmpeg produced a frame without a timestamp.", code="media.ffmpeg_failed"
                )
            yield RawFrame(pts_time=offset + pts_time, image=frame[1], png=frame[0])
        process.wait(timeout=stall_timeout)
    finally:
        pipe.stop()
        if process.poll() is None:
            process.kill()
            process.wait()
        pipe.join()
        watchdog.disarm()
    if watchdog.fired:
        raise UnprocessableError(
            f"ffmpeg made no progress for {stall_timeout:g} s; "
            "the video may be damaged or too slow to decode.",
            code="media.ffmpeg_timeout",
        )
    if process.returncode not in (0, None):
        raise UnprocessableError(
            f"ffmpeg could not decode this video: {tail[-1] if tail else 'unknown error'}",
            code="media.ffmpeg_failed",
            details={"ffmpeg": tail[-3:]},
        )


READ_AHEAD = 1  # decoded frames queued between ffmpeg and the caller (memory: one more in hand each side)
PNG_LEVEL = 3
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND"))
_PNG_MAX_CHUNK = 2**31 - 1


def _read_png(stream: Any) -> bytes | None:
    """The next PNG of an image2pipe stream, rebuilt as IHDR, one IDAT and IEND; None at the end.

    Ancillary chunks (pHYs from the sample aspect ratio, colour tags) are dropped: the stored
    frame is plain RGB pixels, as Pillow would write them. A stream cut short ends the frames
    (ffmpeg's exit status then says why).
    """
    if stream.read(8) != _PNG_SIGNATURE:
        return None
    header, data = b"", []
    while True:
        head = stream.read(8)
        if len(head) < 8:
            return None
        length, kind = struct.unpack(">I4s", head)
        if length > _PNG_MAX_CHUNK:
            return None
        body = stream.read(length + 4)  # the data and its CRC
        if len(body) < length + 4:
            return None
        if kind == b"IHDR":
            header = head + body
        elif kind == b"IDAT":
            data.append(body[:-4])
        elif kind == b"IEND":
            break
    idat = b"".join(data)
    crc = zlib.crc32(idat, zlib.crc32(b"IDAT"))
    return b"".join(
        (
            _PNG_SIGNATURE,
            header,
            struct.pack(">I4s", len(idat), b"IDAT"),
            idat,
            struct.pack(">I", crc),
            _PNG_IEND,
        )
    )


class _FramePipe:
    """Reads ffmpeg's PNGs on a thread, decodes them (Pillow lets go of the GIL meanwhile) and
    queues (png, image) pairs, at most READ_AHEAD of them."""

    def __init__(self, process: subprocess.Popen[bytes], size: tuple[int, int], watchdog: _Watchdog) -> None:
        self.process, self.size, self.watchdog = process, size, watchdog
        self.frames: queue.Queue[tuple[bytes, Image.Image] | None] = queue.Queue(maxsize=READ_AHEAD)
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, item: tuple[bytes, Image.Image] | None) -> bool:
        while not self._stopped.is_set():
            try:
                self.frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while not self._stopped.is_set():
                self.watchdog.arm()
                png = _read_png(stdout)
                self.watchdog.disarm()
                if png is None:
                    break
                try:
                    image = Image.open(io.BytesIO(png), formats=["PNG"])
                    image.load()
                except (OSError, SyntaxError, ValueError) as exc:
                    raise UnprocessableError(
                        f"ffmpeg produced a frame that does not decode ({exc}).", code="media.ffmpeg_failed"
                    ) from exc
                if image.size != self.size or image.mode != "RGB":
                    raise UnprocessableError(
                        f"ffmpeg produced a {image.width}×{image.height} {image.mode} frame, "
                        f"not {self.size[0]}×{self.size[1]} RGB.",
                        code="media.ffmpeg_failed",
                    )
                if not self._put((png, image)):
                    break
        except BaseException as exc:  # handed to the caller by next()
            self.error = exc
        finally:
            self.watchdog.disarm()
            self._put(None)

    def next(self) -> tuple[bytes, Image.Image] | None:
        """The next frame as (png, image), or None at the end of the stream."""
        frame = self.frames.get()
        if frame is None and self.error is not None:
            raise self.error
        return frame

    def stop(self) -> None:
        self._stopped.set()

    def join(self) -> None:
        self._thread.join()


class _Watchdog:
    """Kills ffmpeg when one read waits longer than `timeout` (a hung or pathological decode)."""

    def __init__(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        self.process, self.timeout, self.fired = process, timeout, False
        self._timer: threading.Timer | None = None

    def _fire(self) -> None:
        self.fired = True
        self.process.kill()

    def arm(self) -> None:
        self._timer = threading.Timer(self.timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# --- storing frames -----------------------------------------------------------------------


def _store_frame(
    video: MediaItem, raw: RawFrame, box: Box | None, *, job: Job | None, user: Any
) -> tuple[MediaItem, bool]:
    """Store one frame (or find its capture); True when nothing new was stored.

    Stores `raw.png` as it is and consumes `raw.image`: it is shrunk in place into the thumbnail.
    """
    timestamp_ms = max(0, round(raw.pts_time * 1000))
    width, height = raw.image.size
    full = box or Box(0, 0, width, height)
    # An id-only probe (no join, no ORDER BY; the item is loaded only on a hit): this ran once
    # per captured frame and cost as much as storing the frame's rows.
    existing = list(
        VideoFrame.objects.filter(
            video=video, timestamp_ms=timestamp_ms, crop_x=full.x, crop_y=full.y, crop_w=full.w, crop_h=full.h
        ).values_list("media_item_id", flat=True)[:1]
    )
    if existing:
        return MediaItem.objects.get(pk=existing[0]), True
    fps = (video.fps_milli or 0) / 1000
    frame_index = raw.index if raw.index is not None else (round(timestamp_ms / 1000 * fps) if fps else 0)
    mode = raw.image.mode
    thumbnail = raw.image
    thumbnail.thumbnail((conf.thumbnail_size(),) * 2, Image.Resampling.LANCZOS, reducing_gap=2.0)
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
    with transaction.atomic():
        outcome = media_ingest_derived(
            data=raw.png,
            probed=probed,
            added_by=user,
            origin=Origin(
                kind="frame",
                original_filename=f"{video.name}@{timestamp_ms}ms",
                import_job_id=job.pk if job else None,
            ),
            derived=Derived(
                kind="frame",
                video_id=video.pk,
                timestamp_ms=timestamp_ms,
                frame_index=frame_index,
                box=(full.x, full.y, full.w, full.h),
                name=derived_name(video.name, what),
                artist=video.artist,
                source=video.source,
            ),
        )
        try:
            with transaction.atomic():
                VideoFrame.objects.create(
                    video=video,
                    media_item=outcome.item,
                    frame_index=frame_index,
                    timestamp_ms=timestamp_ms,
                    pts_time=raw.pts_time,
                    crop_x=full.x,
                    crop_y=full.y,
                    crop_w=full.w,
                    crop_h=full.h,
                    extraction_job=job,
                )
        except IntegrityError:
            pass  # a concurrent capture of the same frame and box won; same content either way
        events.send_item_derived(item=outcome.item, parent=video, relation="video")
    return outcome.item, outcome.duplicate


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
                _run_timestamps(job, video, path, params, box, done, user)
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


def _run_timestamps(
    job: Job, video: MediaItem, path: Path, params: dict[str, Any], box: Box | None, done: set[int], user: Any
) -> None:
    for seq, seconds in enumerate(params["timestamps"]):
        if seq in done:
            continue
        if job.cancel_requested:
            return
        label = f"t={seconds:g}s"
        frames = list(_frames_of(path, video, params=params, seek=seconds))
        if not frames:
            job_services.job_item_record(
                job=job,
                seq=seq,
                input=label,
                status=JobItem.Status.FAILED,
                error=DomainError(
                    f"No frame at or after {seconds:g} s (past the last frame).",
                    code="media.timestamp_out_of_range",
                ),
            )
            continue
        item, duplicate = _store_frame(video, frames[0], box, job=job, user=user)
        job_services.job_item_record(
            job=job,
            seq=seq,
            input=label,
            object_id=item.pk,
            status=JobItem.Status.DUPLICATE if duplicate else JobItem.Status.CREATED,
        )


def _run_stream(
    job: Job, video: MediaItem, path: Path, params: dict[str, Any], box: Box | None, done: set[int], user: Any
) -> None:
    """Progress is in frames (created, duplicate or skipped); the position goes in `result`."""
    last_hash: int | None = None
    last_beat = 0.0
    skip = params.get("skip_similar")
    duration_ms = video.duration_ms or 0
    for seq, raw in enumerate(_frames_of(path, video, params=params)):
        if seq >= MAX_FRAMES:
            job_services.job_log(job=job, line=f"Stopped at {MAX_FRAMES} frames.")
            break
        position_ms = max(0, round(raw.pts_time * 1000))
        if time.monotonic() - last_beat > 1.0:
            job = job_services.job_progress(job=job, result=_position(position_ms, duration_ms))
            last_beat = time.monotonic()
            if job.cancel_requested:
                return
        if seq in done:
            continue
        label = f"t={position_ms / 1000:g}s"
        if skip is not None:
            small = raw.image.copy()
            small.thumbnail((64, 64))
            current = probe.phash64(small)
            if last_hash is not None and _hamming(current, last_hash) <= skip:
                job_services.job_item_record(job=job, seq=seq, input=label, status=JobItem.Status.SKIPPED)
                continue
            last_hash = current
        item, duplicate = _store_frame(video, raw, box, job=job, user=user)
        job_services.job_item_record(
            job=job,
            seq=seq,
            input=label,
            object_id=item.pk,
            status=JobItem.Status.DUPLICATE if duplicate else JobItem.Status.CREATED,
        )
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
