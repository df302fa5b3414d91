"""A08: the bucket lists the export documents (docs/export-upstream.md#buckets) equal what the
upstream bucketing code gives at the pinned commits.

UPSTREAM_KOHYA and UPSTREAM_ONETRAINER are literal outputs, obtained once by running the upstream
functions from checkouts at the pinned commits (not our code):

* kohya-ss/sd-scripts 48d368fa, `library/model_util.py`:
  `make_bucket_resolutions((R, R), min, max, 64)` for (512, 256, 1024), (768, 384, 1536),
  (1024, 512, 2048); (width, height) tuples, sorted, as returned.
* Nerogar/mgds 3a6994ad, `src/mgds/pipelineModules/AspectBucketing.py`: the private
  `__create_automatic_buckets([R])` of `AspectBucketing(quantization=q, …)` for (512, 8),
  (768, 8), (1024, 64) (q as OneTrainer 23df3832 sets it in
  `modules/dataLoader/StableDiffusion{,XL}BaseDataLoader.py`); its (h, w) pairs turned into
  (width, height) and sorted.

The documented lists (DOCUMENTED_*) are written as in the docs: one entry per shape with width ≥
height, every non-square entry also meaning its transpose. The arithmetic the docs describe is
re-implemented here in our own words and must give the same lists.
"""

from __future__ import annotations

import math

import pytest

UPSTREAM_KOHYA: dict[int, list[tuple[int, int]]] = {
    512: [
        (256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640),
        (448, 576), (512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256),
        (896, 256), (960, 256), (1024, 256),
    ],
    768: [
        (384, 1344), (384, 1408), (384, 1472), (384, 1536), (448, 1216), (448, 1280), (512, 1088),
        (512, 1152), (576, 960), (576, 1024), (640, 896), (704, 832), (768, 768), (832, 704),
        (896, 640), (960, 576), (1024, 576), (1088, 512), (1152, 512), (1216, 448), (1280, 448),
        (1344, 384), (1408, 384), (1472, 384), (1536, 384),
    ],
    1024: [
        (512, 1856), (512, 1920), (512, 1984), (512, 2048), (576, 1664), (576, 1728), (576, 1792),
        (640, 1536), (640, 1600), (704, 1408), (704, 1472), (768, 1280), (768, 1344), (832, 1216),
        (896, 1152), (960, 1088), (1024, 1024), (1088, 960), (1152, 896), (1216, 832), (1280, 768),
        (1344, 768), (1408, 704), (1472, 704), (1536, 640), (1600, 640), (1664, 576), (1728, 576),
        (1792, 576), (1856, 512), (1920, 512), (1984, 512), (2048, 512),
    ],
}  # fmt: skip
UPSTREAM_ONETRAINER: dict[int, list[tuple[int, int]]] = {
    512: [
        (256, 1024), (272, 960), (296, 888), (320, 808), (360, 728), (384, 680), (416, 624),
        (456, 576), (512, 512), (576, 456), (624, 416), (680, 384), (728, 360), (808, 320),
        (888, 296), (960, 272), (1024, 256),
    ],
    768: [
        (384, 1536), (408, 1440), (440, 1328), (488, 1216), (544, 1088), (584, 1016), (624, 944),
        (688, 856), (768, 768), (856, 688), (944, 624), (1016, 584), (1088, 544), (1216, 488),
        (1328, 440), (1440, 408), (1536, 384),
    ],
    1024: [
        (512, 2048), (576, 1792), (576, 1920), (640, 1600), (704, 1472), (768, 1344), (832, 1280),
        (896, 1152), (1024, 1024), (1152, 896), (1280, 832), (1344, 768), (1472, 704), (1600, 640),
        (1792, 576), (1920, 576), (2048, 512),
    ],
}  # fmt: skip

# As the docs list them (sd1/sd2-base 512, sd2 768, sdxl 1024).
DOCUMENTED_KOHYA = {
    512: "512x512 576x448 640x384 704x320 768x320 832x256 896x256 960x256 1024x256",
    768: "768x768 832x704 896x640 960x576 1024x576 1088x512 1152x512 1216x448 1280x448 1344x384"
    " 1408x384 1472x384 1536x384",
    1024: "1024x1024 1088x960 1152x896 1216x832 1280x768 1344x768 1408x704 1472x704 1536x640"
    " 1600x640 1664x576 1728x576 1792x576 1856x512 1920x512 1984x512 2048x512",
}
DOCUMENTED_ONETRAINER = {
    512: "512x512 576x456 624x416 680x384 728x360 808x320 888x296 960x272 1024x256",
    768: "768x768 856x688 944x624 1016x584 1088x544 1216x488 1328x440 1440x408 1536x384",
    1024: "1024x1024 1152x896 1280x832 1344x768 1472x704 1600x640 1792x576 1920x576 2048x512",
}
KOHYA_LIMITS = {512: (256, 1024, 64), 768: (384, 1536, 64), 1024: (512, 2048, 64)}
ONETRAINER_Q = {512: 8, 768: 8, 1024: 64}
COUNTS = {"kohya": {512: 17, 768: 25, 1024: 33}, "onetrainer": {512: 17, 768: 17, 1024: 17}}


def expand(documented: str) -> list[tuple[int, int]]:
    shapes = set()
    for entry in documented.split():
        width, height = (int(side) for side in entry.split("x"))
        shapes |= {(width, height), (height, width)}
    return sorted(shapes)


def kohya_arithmetic(resolution: int, low: int, high: int, step: int) -> list[tuple[int, int]]:
    """The documented rule: the square of side ⌊R/step⌋·step, then for each width from `low` to
    `high` in steps, the tallest height fitting the area R², capped at `high`, if ≥ `low`."""
    area = resolution * resolution
    shapes = {(math.isqrt(area) // step * step,) * 2}
    for width in range(low, high + 1, step):
        height = min(high, area // width // step * step)
        if height >= low:
            shapes |= {(width, height), (height, width)}
    return sorted(shapes)


def onetrainer_arithmetic(resolution: int, q: int) -> list[tuple[int, int]]:
    """The documented rule: for each aspect a, (R·√a, R/√a) and its transpose, each side rounded
    to a multiple of q (Python's round)."""
    shapes = set()
    for aspect in (1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4):
        long, short = resolution * math.sqrt(aspect), resolution / math.sqrt(aspect)
        pair = (round(long / q) * q, round(short / q) * q)
        shapes |= {pair, pair[::-1]}
    return sorted(shapes)


@pytest.mark.parametrize("resolution", [512, 768, 1024])
def test_kohya_lists_match_upstream(resolution: int) -> None:
    upstream = UPSTREAM_KOHYA[resolution]
    assert len(upstream) == COUNTS["kohya"][resolution]
    assert expand(DOCUMENTED_KOHYA[resolution]) == upstream
    assert kohya_arithmetic(resolution, *KOHYA_LIMITS[resolution]) == upstream


@pytest.mark.parametrize("resolution", [512, 768, 1024])
def test_onetrainer_lists_match_upstream(resolution: int) -> None:
    upstream = UPSTREAM_ONETRAINER[resolution]
    assert len(upstream) == COUNTS["onetrainer"][resolution]
    assert expand(DOCUMENTED_ONETRAINER[resolution]) == upstream
    assert onetrainer_arithmetic(resolution, ONETRAINER_Q[resolution]) == upstream


def test_a_wrong_documented_entry_would_be_caught() -> None:
    wrong = DOCUMENTED_KOHYA[512].replace("576x448", "576x512")
    assert expand(wrong) != UPSTREAM_KOHYA[512]
    assert kohya_arithmetic(512, 256, 1024, 32) != UPSTREAM_KOHYA[512]
