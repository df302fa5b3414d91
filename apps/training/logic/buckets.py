"""Aspect-ratio buckets of kohya sd-scripts and OneTrainer, and where an image lands in them
(docs/export-captions.md#buckets). Written from the trainers' documented behaviour at the pinned
versions; the lists are asserted in tests/training/logic/test_buckets.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TypedDict

Size = tuple[int, int]  # (width, height)

# OneTrainer's fixed aspect ratios (long side / short side), each also transposed.
ONETRAINER_ASPECTS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0)


class FamilyDefaults(TypedDict):
    resolution: int
    min: int
    max: int
    step: int
    quantum: int


_FAMILY_DEFAULTS: dict[str, FamilyDefaults] = {
    "sd1": {"resolution": 512, "min": 256, "max": 1024, "step": 64, "quantum": 8},
    "sd2-base": {"resolution": 512, "min": 256, "max": 1024, "step": 64, "quantum": 8},
    "sd2": {"resolution": 768, "min": 384, "max": 1536, "step": 64, "quantum": 8},
    "sdxl": {"resolution": 1024, "min": 512, "max": 2048, "step": 64, "quantum": 64},
}


def family_defaults(family: str) -> FamilyDefaults:
    """R, kohya min / max / step and the OneTrainer quantum of a base-model family."""
    try:
        return dict(_FAMILY_DEFAULTS[family])  # type: ignore[return-value]
    except KeyError:
        raise ValueError(
            f"unknown base-model family {family!r}: use one of {sorted(_FAMILY_DEFAULTS)}"
        ) from None


@dataclass(frozen=True)
class BucketFit:
    """Where one image lands: the bucket, the size it is scaled to before the crop, the share of
    the scaled image the crop removes, and whether it was scaled up."""

    bucket: Size
    resized: Size
    crop_loss: float
    upscale: bool


def kohya_buckets(resolution: int, min_: int, max_: int, step: int) -> list[Size]:
    """kohya's bucket list for a square resolution: the largest square of area ≤ R², then for each
    width from min to max in steps the tallest height within the area (capped at max), both ways."""
    return list(_kohya_buckets(resolution, min_, max_, step))


@lru_cache(maxsize=64)
def _kohya_buckets(resolution: int, min_: int, max_: int, step: int) -> tuple[Size, ...]:
    if step <= 0 or resolution <= 0:
        raise ValueError(f"resolution {resolution} and bucket step {step} must be positive")
    area = resolution * resolution
    side = int(math.sqrt(area)) // step * step
    sizes: set[Size] = {(side, side)}
    for width in range(min_, max_ + 1, step):
        height = min(max_, area // width // step * step)
        if height >= min_:
            sizes.add((width, height))
            sizes.add((height, width))
    return tuple(sorted(sizes))


def onetrainer_buckets(resolution: int, quantum: int) -> list[Size]:
    """OneTrainer's bucket list: each fixed aspect at the resolution's area, both ways, each side
    rounded to the quantum (Python `round`, half to even)."""
    return list(_onetrainer_buckets(resolution, quantum))


@lru_cache(maxsize=64)
def _onetrainer_buckets(resolution: int, quantum: int) -> tuple[Size, ...]:
    if quantum <= 0 or resolution <= 0:
        raise ValueError(f"resolution {resolution} and quantum {quantum} must be positive")
    sizes: set[Size] = set()
    for aspect in ONETRAINER_ASPECTS:
        root = math.sqrt(aspect)
        long = round(resolution * root / quantum) * quantum
        short = round(resolution / root / quantum) * quantum
        sizes.add((long, short))
        sizes.add((short, long))
    return tuple(sorted(sizes))


def _fit(width: int, height: int, bucket: Size, resized: Size) -> BucketFit:
    loss = 1.0 - (bucket[0] * bucket[1]) / (resized[0] * resized[1])
    upscale = resized[0] > width or resized[1] > height
    return BucketFit(bucket=bucket, resized=resized, crop_loss=max(0.0, loss), upscale=upscale)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}×{height} must be positive")


def kohya_predict(
    width: int, height: int, *, resolution: int, min_: int, max_: int, step: int, no_upscale: bool = False
) -> BucketFit:
    """kohya's bucket for a W×H image: its own size if it is a bucket, else the bucket closest in
    w/h (first on ties), scaled so the image covers it (rounded half up) and centre-cropped. With
    `no_upscale` an image above R² shrinks to R² (one side on the step) and the bucket is that
    size floored to the step."""
    _check_size(width, height)
    if no_upscale:
        return _kohya_no_upscale(width, height, resolution * resolution, step)
    buckets = kohya_buckets(resolution, min_, max_, step)
    aspect = width / height
    if (width, height) in buckets:
        bucket = (width, height)
    else:
        bucket = min(buckets, key=lambda size: abs(size[0] / size[1] - aspect))
    scale = bucket[1] / height if aspect > bucket[0] / bucket[1] else bucket[0] / width
    resized = (math.floor(width * scale + 0.5), math.floor(height * scale + 0.5))
    return _fit(width, height, bucket, resized)


def _kohya_no_upscale(width: int, height: int, area: int, step: int) -> BucketFit:
    aspect = width / height

    def to_step(value: float) -> int:
        whole = math.floor(value + 0.5)
        return whole - whole % step

    if width * height > area:
        scaled_width = math.sqrt(area * aspect)
        scaled_height = area / scaled_width
        by_width = to_step(scaled_width)
        by_height = to_step(scaled_height)
        error_width = (
            abs(by_width / to_step(by_width / aspect) - aspect) if to_step(by_width / aspect) else math.inf
        )
        error_height = abs(to_step(by_height * aspect) / by_height - aspect) if by_height else math.inf
        if error_width < error_height:
            resized = (by_width, math.floor(by_width / aspect + 0.5))
        else:
            resized = (math.floor(by_height * aspect + 0.5), by_height)
    else:
        resized = (width, height)
    bucket = (resized[0] - resized[0] % step, resized[1] - resized[1] % step)
    if bucket[0] <= 0 or bucket[1] <= 0:
        raise ValueError(f"image size {width}×{height} is below one bucket step ({step})")
    return _fit(width, height, bucket, resized)


def onetrainer_predict(width: int, height: int, *, resolution: int, quantum: int) -> BucketFit:
    """OneTrainer's bucket for a W×H image: the bucket closest in h/w (first on ties), the image
    scaled to cover it (Python `round`) and cropped."""
    _check_size(width, height)
    buckets = onetrainer_buckets(resolution, quantum)
    ratio = height / width
    bucket = min(buckets, key=lambda size: abs(size[1] / size[0] - ratio))
    scale = max(bucket[0] / width, bucket[1] / height)
    resized = (round(width * scale), round(height * scale))
    return _fit(width, height, bucket, resized)
