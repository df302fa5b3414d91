"""Frame-capture requests: validated against the video before any job exists."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from apps.core.exceptions import DomainError, UnprocessableError
from apps.media.models import MediaItem

MODES = ("timestamps", "interval", "count", "scene", "keyframes")
MAX_FRAMES = 20_000


class FrameRequestError(DomainError):
    default_code = "media.invalid_frames_request"


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


def _number(raw: Any, name: str, *, minimum: float, maximum: float | None = None) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or math.isnan(raw):
        raise FrameRequestError(f"{name} must be a number.", details={"field": name})
    if raw < minimum or (maximum is not None and raw > maximum):
        bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
        raise FrameRequestError(f"{name} must be {bound} ({raw:g} given).", details={"field": name})
    return float(raw)


def frames_request_clean(*, video: MediaItem, raw: Any) -> dict[str, Any]:
    """Validate a capture request against the video; returns the job parameters."""
    if video.kind != MediaItem.Kind.VIDEO:
        raise UnprocessableError(
            f"Item {video.pk} is not a video; frames come from videos only.", code="media.not_a_video"
        )
    if not isinstance(raw, dict):
        raise FrameRequestError("The request must be an object with a mode.")
    mode = raw.get("mode", "timestamps")
    if mode not in MODES:
        raise FrameRequestError(f"mode must be one of {', '.join(MODES)}.", details={"field": "mode"})
    duration = (video.duration_ms or 0) / 1000
    params: dict[str, Any] = {"video_id": video.pk, "mode": mode}
    if mode == "timestamps":
        stamps = raw.get("timestamps")
        if not isinstance(stamps, list) or not 1 <= len(stamps) <= 1000:
            raise FrameRequestError(
                "timestamps must be a list of 1 to 1000 times in seconds.", details={"field": "timestamps"}
            )
        values = [_number(t, "timestamps", minimum=0) for t in stamps]
        late = [t for t in values if t >= duration]
        if late:
            raise FrameRequestError(
                f"Timestamp {late[0]:g} s is past the end of the video ({duration:.3f} s).",
                code="media.timestamp_out_of_range",
                details={"timestamp": late[0], "duration": duration},
            )
        params["timestamps"] = sorted(set(values))
    elif mode == "interval":
        params["interval"] = _number(raw.get("interval"), "interval", minimum=0.04, maximum=3600)
        if duration / params["interval"] > MAX_FRAMES:
            raise FrameRequestError(
                f"That would capture more than {MAX_FRAMES} frames; use a longer interval."
            )
    elif mode == "count":
        params["count"] = int(_number(raw.get("count"), "count", minimum=1, maximum=MAX_FRAMES))
    elif mode == "scene":
        params["threshold"] = _number(raw.get("threshold", 0.3), "threshold", minimum=0.01, maximum=1)
    if raw.get("box") is not None:
        box = raw["box"]
        if not isinstance(box, list) or len(box) != 4:
            raise FrameRequestError("box must be [x, y, width, height] in pixels.", details={"field": "box"})
        x, y = (int(_number(v, "box x/y", minimum=0)) for v in box[:2])
        w, h = (int(_number(v, "box width/height", minimum=1)) for v in box[2:])
        if x + w > video.width or y + h > video.height:
            raise FrameRequestError(
                f"The box {box} reaches outside the {video.width}×{video.height} frame.",
                code="media.box_outside",
                details={"box": box, "width": video.width, "height": video.height},
            )
        params["box"] = [x, y, w, h]
    skip = raw.get("skip_similar")
    if skip is not None:
        params["skip_similar"] = int(_number(skip, "skip_similar", minimum=0, maximum=32))
    return params
