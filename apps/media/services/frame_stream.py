"""The frames of a video as a stream: one ffmpeg (or Pillow, for animated GIF and WebP) per
capture, the selected frames decoded on a reader thread, constant memory (frames.py stores them).

ffmpeg decodes (applying the container's rotation), selects, crops and writes the frames as RGB
PNGs to a pipe (its PNG encoder runs on its own threads, beside the decoder, out of Python's
way) and, on a second pipe, each frame already scaled to its thumbnail as raw RGB (see
docs/architecture.md#media-pipelines); `showinfo` reports each frame's presentation time on
stderr.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from apps.core.exceptions import UnprocessableError
from apps.media import conf
from apps.media.models import MediaItem
from apps.media.services import probe
from apps.media.services.animation import ANIMATION_FORMATS, stream_animation
from apps.media.services.frame_requests import Box

SEEK_MARGIN = 3.0  # seconds decoded before a requested time, to land exactly on it
_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?\bpts_time:\s*(-?[\d.]+)")


# --- the ffmpeg stream --------------------------------------------------------------------


@dataclass
class RawFrame:
    pts_time: float
    # The frame's pixels, at most `size`: ffmpeg's stream hands them already shrunk to the
    # thumbnail (its own LANCZOS scale), animations at full size.
    image: Image.Image
    png: bytes  # the frame as stored: ffmpeg's PNG, rebuilt as IHDR, one IDAT and IEND
    size: tuple[int, int]  # the stored frame's width and height
    index: int | None = None  # the frame's number when the decoder knows it (animations)


def frames_of(
    path: Path,
    video: MediaItem,
    *,
    params: dict[str, Any],
    seek: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[RawFrame]:
    """The selected frames: Pillow for animated GIF and WebP, the ffmpeg stream for the rest."""
    if video.format in ANIMATION_FORMATS:
        duration = (video.duration_ms or 0) / 1000
        for frame in stream_animation(path, video.format, params=params, duration=duration, seek=seek):
            yield RawFrame(
                pts_time=frame.pts_time,
                image=frame.image,
                png=frame.png,
                size=frame.image.size,
                index=frame.index,
            )
        return
    yield from stream_frames(path, video, params=params, seek=seek, stop=stop)


def select_expression(params: dict[str, Any], duration: float) -> str | None:
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


def _ffmpeg_args(
    path: Path,
    video: MediaItem,
    params: dict[str, Any],
    box: Box | None,
    seek: float | None,
    offset: float,
    raw_write: int,
    small: tuple[int, int],
) -> list[str]:
    """ffmpeg's arguments after the global ones: input, select/crop/showinfo, the two outputs
    (the stored PNG, and the raw pixels at `small`, the thumbnail's size)."""
    filters = []
    args = ["-loglevel", "info"]
    if params["mode"] == "keyframes":
        args += ["-skip_frame", "nokey"]
    if offset:
        # Input seeking can land past the target (MPEG-PS/vob overshoots by a GOP), so seek a
        # margin early and let `select` drop the frames before the target. After an input
        # seek ffmpeg counts t from the seek point, hence the offset.
        args += ["-ss", f"{offset:.6f}"]
    args += ["-i", str(path)]
    if seek is not None:
        filters.append(f"select=gte(t\\,{seek - offset - 0.0005:.6f})")
    elif (expression := select_expression(params, (video.duration_ms or 0) / 1000)) is not None:
        filters.append(f"select='{expression}'")
    if box:
        filters.append(f"crop={box.w}:{box.h}:{box.x}:{box.y}")
    filters.append("showinfo")
    # Each selected frame goes out twice: as ffmpeg's PNG (what is stored) on stdout and, on a
    # second pipe, scaled to the thumbnail's size by swscale's LANCZOS as raw RGB (what the
    # thumbnail and hash are made from): no PNG decode and no full-size resample in Python.
    # Scaled in the decoder's YUV, then converted: about 2 levels (of 255) from Pillow's LANCZOS
    # of the same PNG, and no dearer for ffmpeg than the PNG alone. Scaling in RGB would match
    # Pillow within 0.1 of a level but costs ffmpeg ~6 ms a 720p frame (swscale has no fast
    # path for packed RGB), as much as the Python resample it replaces (bench/README.md).
    graph = f"[0:v:0]{','.join(filters)},split=2[png][full]"
    if small == _frame_size(video, box):
        graph += ";[full]null[raw]"
    else:
        flags = "lanczos+accurate_rnd+full_chroma_int"
        graph += f";[full]scale={small[0]}:{small[1]}:flags={flags}[raw]"
    args += ["-filter_complex", graph]
    once = ["-frames:v", "1"] if seek is not None else []
    # zlib level 3 with adaptive row filters: what Pillow's compress_level=3 writes, as small.
    args += ["-map", "[png]", "-fps_mode", "passthrough", *once, "-pix_fmt", "rgb24"]
    args += ["-c:v", "png", "-compression_level", str(PNG_LEVEL), "-pred", "mixed"]
    args += ["-f", "image2pipe", "pipe:1"]
    args += ["-map", "[raw]", "-fps_mode", "passthrough", *once, "-pix_fmt", "rgb24"]
    args += ["-f", "rawvideo", f"pipe:{raw_write}"]
    return args


def stream_frames(
    path: Path,
    video: MediaItem,
    *,
    params: dict[str, Any],
    seek: float | None = None,
    stall_timeout: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[RawFrame]:
    """Yield selected frames one at a time; kills ffmpeg when the caller stops or it stalls.

    `stop` (set from another thread) ends the frames at once, even while ffmpeg is still
    decoding towards the next selected frame.

    Times are on ffmpeg's own timeline (the one `ffmpeg -ss T` uses): seconds from the start
    of the stream. With `seek`, only the first frame at or after that time is produced.
    """
    box = Box(*params["box"]) if params.get("box") else None
    width, height = _frame_size(video, box)
    small = probe.thumbnail_size(width, height, conf.thumbnail_size())
    offset = max(0.0, seek - SEEK_MARGIN) if seek is not None else 0.0
    raw_read, raw_write = os.pipe()
    _pipe_widen(raw_write)
    args = _ffmpeg_args(path, video, params, box, seek, offset, raw_write, small)
    cmd = [probe.ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", *args]
    stall_timeout = stall_timeout or conf.ffmpeg_timeout()
    try:
        process = subprocess.Popen(  # noqa: S603
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(raw_write,)
        )
    except BaseException:
        os.close(raw_read)
        raise
    finally:
        os.close(raw_write)
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
    pipe = _FramePipe(process, (width, height), small, watchdog, os.fdopen(raw_read, "rb", buffering=0))
    try:
        while (frame := pipe.next(stop)) is not None:
            try:
                pts_time = times.get(timeout=stall_timeout)
            except queue.Empty:
                pts_time = None
            if pts_time is None:
                raise UnprocessableError(
                    "ffmpeg produced a frame without a timestamp.", code="media.ffmpeg_failed"
                )
            yield RawFrame(pts_time=offset + pts_time, image=frame[1], png=frame[0], size=(width, height))
        if stop is not None and stop.is_set():
            return  # stopped by the caller: ffmpeg is killed below, its exit status means nothing
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


READ_AHEAD = 1  # frames queued between ffmpeg and the caller (memory: one more in hand each side)
PIPE_BYTES = 1 << 20  # the raw frames' pipe buffer (/proc/sys/fs/pipe-max-size is 1 MiB by default)
RAW_AHEAD = 4  # raw thumbnails read ahead of their PNGs (ffmpeg's PNG encoder trails the split)
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
    """Reads ffmpeg's PNGs (stdout) of `size` and the same frames as raw RGB of `small` (a second
    pipe, read on a thread of its own so neither pipe can block ffmpeg) and queues (png, image)
    pairs, at most READ_AHEAD of them; the image wraps the raw bytes (no PNG decode)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        size: tuple[int, int],
        small: tuple[int, int],
        watchdog: _Watchdog,
        raw: Any,
    ) -> None:
        self.process, self.size, self.small, self.watchdog, self.raw = process, size, small, watchdog, raw
        self.frames: queue.Queue[tuple[bytes, Image.Image] | None] = queue.Queue(maxsize=READ_AHEAD)
        self.raws: queue.Queue[bytearray | None] = queue.Queue(maxsize=RAW_AHEAD)
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._raw_thread = threading.Thread(target=self._read_raw, daemon=True)
        self._raw_thread.start()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _put(self, into: queue.Queue[Any], item: Any) -> bool:
        while not self._stopped.is_set():
            try:
                into.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_raw(self) -> None:
        """Whole raw frames from the second pipe; None after the last (or a short read)."""
        frame_bytes = self.small[0] * self.small[1] * 3
        try:
            while not self._stopped.is_set():
                buffer = bytearray(frame_bytes)
                view, got = memoryview(buffer), 0
                while got < frame_bytes:
                    n = self.raw.readinto(view[got:])
                    if not n:
                        return
                    got += n
                if not self._put(self.raws, buffer):
                    return
        except OSError:
            return
        finally:
            self._put(self.raws, None)

    def _raw_frame(self) -> bytearray | None:
        while not self._stopped.is_set():
            try:
                return self.raws.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

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
                pixels = self._raw_frame()
                if pixels is None:
                    if self._stopped.is_set():
                        break
                    raise UnprocessableError(
                        "ffmpeg produced a frame without its pixels.", code="media.ffmpeg_failed"
                    )
                if _png_size(png) != self.size:
                    raise UnprocessableError(
                        f"ffmpeg produced a {_png_size(png)[0]}×{_png_size(png)[1]} frame, "
                        f"not {self.size[0]}×{self.size[1]}.",
                        code="media.ffmpeg_failed",
                    )
                image = Image.frombuffer("RGB", self.small, pixels, "raw", "RGB", 0, 1)
                if not self._put(self.frames, (png, image)):
                    break
        except BaseException as exc:  # handed to the caller by next()
            self.error = exc
        finally:
            self.watchdog.disarm()
            self._put(self.frames, None)

    def next(self, stop: threading.Event | None = None) -> tuple[bytes, Image.Image] | None:
        """The next frame as (png, image), or None at the end of the stream or once `stop` is set."""
        while True:
            try:
                frame = self.frames.get(timeout=0.1 if stop is not None else None)
                break
            except queue.Empty:
                if stop is not None and stop.is_set():
                    return None
        if frame is None and self.error is not None:
            raise self.error
        return frame

    def stop(self) -> None:
        self._stopped.set()

    def join(self) -> None:
        self._thread.join()
        self._raw_thread.join()
        self.raw.close()


def _pipe_widen(fd: int) -> None:
    """Give a pipe of raw frames a 1 MiB buffer (Linux; 64 KiB by default): a 720p frame then
    crosses in three writes instead of forty, with as many fewer wake-ups of each side."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, PIPE_BYTES)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a rebuilt PNG's IHDR (right after the signature and chunk head)."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


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
