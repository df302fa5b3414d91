"""SD-style aspect buckets for a base resolution (docs/datasets.md#buckets). Pure arithmetic.

For base resolution R (512, 768, 1024, …): every bucket's area is at most R², both sides are
multiples of STEP (64) between MIN_SIDE and MAX_SIDE. For each width w in that range the bucket
is (w, h) with h the largest multiple of STEP such that w × h ≤ R² (capped at MAX_SIDE), kept
when h ≥ MIN_SIDE. An image goes to the bucket whose aspect is nearest to its own on a log
scale (a 2:1 image is as far from 1:1 as a 1:2 one), so the buckets split the aspect axis at
the geometric means of neighbouring bucket aspects: `thresholds` gives those cut points in
milli (width ÷ height × 1000, the unit of MediaItem.ratio_milli), which SQL compares with.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from apps.core.exceptions import DomainError
from apps.core.ints import int_param

STEP = 64
MIN_BASE, MAX_BASE = 256, 2048


@dataclass(frozen=True)
class Bucket:
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def label(self) -> str:
        return f"{self.width}×{self.height}"


def bucket_sides(base: int) -> tuple[int, int]:
    """Smallest and largest side for a base resolution: base/2 and base×2 (kohya's defaults
    are 256 and 1024 for base 512 and 2048 for 1024), rounded to STEP."""
    return max(STEP, (base // 2) // STEP * STEP), (base * 2) // STEP * STEP


def buckets_for(base: int) -> list[Bucket]:
    """The buckets of `base`, sorted by aspect (tallest first)."""
    if base % STEP or not MIN_BASE <= base <= MAX_BASE:
        raise ValueError(f"base must be a multiple of {STEP} in {MIN_BASE}..{MAX_BASE}")
    min_side, max_side = bucket_sides(base)
    area = base * base
    found: set[Bucket] = set()
    for width in range(min_side, max_side + 1, STEP):
        height = min(max_side, area // width // STEP * STEP)
        if height >= min_side:
            found.add(Bucket(width, height))
    return sorted(found, key=lambda b: b.aspect)


def thresholds(buckets: list[Bucket]) -> list[int]:
    """Cut points in ratio_milli between neighbouring buckets (len(buckets) - 1 of them): an
    image with ratio_milli < thresholds[i] (and ≥ thresholds[i-1]) belongs to buckets[i]."""
    return [
        math.ceil(1000 * math.sqrt(low.aspect * high.aspect)) for low, high in itertools.pairwise(buckets)
    ]


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket for an image, by the same cut points SQL uses."""
    ratio = round(1000 * width / height)
    for bucket, cut in zip(buckets, thresholds(buckets), strict=False):
        if ratio < cut:
            return bucket
    return buckets[-1]


def base_param(raw: Any) -> int:
    """A base resolution from a query string (default 1024), or a 400 saying what is allowed."""
    base = int_param(raw, field="base", minimum=MIN_BASE, maximum=MAX_BASE, default=1024)
    if base % STEP:
        raise DomainError(
            f"base: a multiple of {STEP} from {MIN_BASE} to {MAX_BASE}.",
            code="datasets.invalid",
            details={"fields": {"base": [f"A multiple of {STEP}."]}},
        )
    return int(base)
