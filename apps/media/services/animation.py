"""Animated GIF and WebP as videos: timing from the frame delays, frames decoded by Pillow.

Pillow composes each frame as browsers show it (disposal, blending, partial frames), and knows
each frame's delay, so frame k starts at the sum of the delays before it: frames are exact by
index, not approximated from a frame rate. Delays of 10 ms or less play as 100 ms, as browsers
do. Frame selection follows the ffmpeg path in `frames.py` mode for mode
(docs/architecture.md#storage, README "Transforms and frames").
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageStat

from apps.media import conf
from apps.media.exceptions import MediaBombError, MediaCorruptError
from apps.media.formats import ANIMATION_FORMATS, PIL_FORMATS

__all__ = ["ANIMATION_FORMATS", "AnimationFrame", "Timing", "animation_timing", "stream_animation"]
MIN_DELAY_MS = 20  # browsers play shorter delays (0 or 10 ms) as 100 ms
DEFAULT_DELAY_MS = 100
PNG_LEVEL = 3


@dataclass(frozen=True)
class Timing:
    delays_ms: list[int]

    @property
    def duration_ms(self) -> int:
        return sum(self.delays_ms)

    @property
    def starts_ms(self) -> list[int]:
        starts, at = [], 0
        for delay in self.delays_ms:
            starts.append(at)
            at += delay
        return starts

    @property
    def fps_milli(self) -> int:
        """Frames per second × 1000: exact for even delays, the average otherwise."""
        return round(1_000_000 * len(self.delays_ms) / max(1, self.duration_ms))


@dataclass
class AnimationFrame:
    index: int
    pts_time: float
    image: Image.Image
    png: bytes


def _open(path: Path, fmt: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path, formats=[PIL_FORMATS[fmt]])


def _delay(image: Image.Image) -> int:
    raw = image.info.get("duration")
    delay = int(raw) if isinstance(raw, (int, float)) and math.isfinite(raw) else 0
    return delay if delay >= MIN_DELAY_MS else DEFAULT_DELAY_MS


def _frames(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """(index, composed frame) in order; WebP reports a frame's delay only once it is loaded."""
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        yield index, image


def _check_size(image: Image.Image, fmt: str) -> None:
    """Frames × pixels within BAGGINTAG_MAX_ANIMATION_PIXELS: a small file can declare thousands
    of large frames, and every one of them is decoded."""
    frames = int(getattr(image, "n_frames", 1))
    total = frames * image.width * image.height
    if total > conf.max_animation_pixels():
        raise MediaBombError(
            f"This {fmt.upper()} animation has {frames:,} frames of {image.width}×{image.height}: "
            f"{total:,} pixels to decode, more than the {conf.max_animation_pixels():,} allowed "
            "(BAGGINTAG_MAX_ANIMATION_PIXELS)."
        )


def animation_timing(path: Path, fmt: str) -> Timing:
    """Each frame's delay; decodes every frame, so a damaged frame shows here, at ingest."""
    try:
        with _open(path, fmt) as image:
            _check_size(image, fmt)
            return Timing([_delay(frame) for _, frame in _frames(image)])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaBombError(f"The animation declares too many pixels to decode safely ({exc}).") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as exc:
        raise MediaCorruptError(
            f"A frame of this {fmt.upper()} animation cannot be decoded ({exc})."
        ) from exc


def _plain(frame: Image.Image) -> Image.Image:
    """The frame as stored: RGB, or RGBA when some pixel is not opaque."""
    rgba = frame.convert("RGBA")
    if rgba.getchannel("A").getextrema() == (255, 255):
        return rgba.convert("RGB")
    return rgba


def _scene_score(previous: Image.Image | None, current: Image.Image) -> float:
    """How different a frame is from the one before, 0–1 (mean absolute RGB difference)."""
    if previous is None:
        return 1.0
    diff = ImageChops.difference(previous.convert("RGB"), current.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / (3 * 255)


def _chooser(params: dict[str, Any], duration: float, seek: float | None) -> Any:
    """A predicate (index, start s, frame, previous frame) → keep, mirroring ffmpeg's `select`."""
    mode = params["mode"]
    if seek is not None:
        return lambda _i, t, _f, _p: t >= seek - 0.0005
    if mode in ("interval", "count"):
        step = params["interval"] if mode == "interval" else duration / params["count"]
        last: list[float] = []

        def every_step(_i: int, t: float, _f: Image.Image, _p: Image.Image | None) -> bool:
            if last and math.floor(t / step + 1e-6) <= math.floor(last[0] / step + 1e-6):
                return False
            last[:] = [t]
            return True

        return every_step
    if mode == "scene":
        threshold = params["threshold"]
        return lambda i, _t, f, p: i == 0 or _scene_score(p, f) > threshold
    return lambda _i, _t, _f, _p: True  # keyframes: every composed frame is a whole picture


def stream_animation(
    path: Path, fmt: str, *, params: dict[str, Any], duration: float, seek: float | None = None
) -> Iterator[AnimationFrame]:
    """The selected frames of an animated GIF or WebP, one at a time, boxed as asked.

    With `seek`, only the first frame starting at or after that time (as `frame_stream.stream_frames`).
    """
    box = params.get("box")
    keep = _chooser(params, duration, seek)
    try:
        with _open(path, fmt) as image:
            previous: Image.Image | None = None
            at = 0
            for index, frame in _frames(image):
                delay = _delay(frame)
                current = _plain(frame)
                if keep(index, at / 1000, current, previous):
                    # A copy: the caller shrinks what it gets into a thumbnail, in place.
                    picture = (
                        current.crop((box[0], box[1], box[0] + box[2], box[1] + box[3]))
                        if box
                        else current.copy()
                    )
                    buffer = io.BytesIO()
                    picture.save(buffer, "PNG", compress_level=PNG_LEVEL)
                    yield AnimationFrame(
                        index=index, pts_time=at / 1000, image=picture, png=buffer.getvalue()
                    )
                    if seek is not None:
                        return
                previous = current if params["mode"] == "scene" else None
                at += delay
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaBombError(f"The animation declares too many pixels to decode safely ({exc}).") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaCorruptError(
            f"A frame of this {fmt.upper()} animation cannot be decoded ({exc})."
        ) from exc
