"""§7 of the export spec: the bucket lists of both trainers and where an image lands."""

from __future__ import annotations

import pytest

from apps.training.logic.buckets import (
    BucketFit,
    family_defaults,
    kohya_buckets,
    kohya_predict,
    onetrainer_buckets,
    onetrainer_predict,
)

# The spec's lists: W×H with W ≥ H; every non-square entry is also in the list transposed.
KOHYA = {
    "sd1": (17, "512x512 576x448 640x384 704x320 768x320 832x256 896x256 960x256 1024x256"),
    "sd2": (
        25,
        "768x768 832x704 896x640 960x576 1024x576 1088x512 1152x512 1216x448 1280x448 1344x384 "
        "1408x384 1472x384 1536x384",
    ),
    "sdxl": (
        33,
        "1024x1024 1088x960 1152x896 1216x832 1280x768 1344x768 1408x704 1472x704 1536x640 1600x640 "
        "1664x576 1728x576 1792x576 1856x512 1920x512 1984x512 2048x512",
    ),
}
ONETRAINER = {
    "sd1": (17, "512x512 576x456 624x416 680x384 728x360 808x320 888x296 960x272 1024x256"),
    "sd2": (17, "768x768 856x688 944x624 1016x584 1088x544 1216x488 1328x440 1440x408 1536x384"),
    "sdxl": (17, "1024x1024 1152x896 1280x832 1344x768 1472x704 1600x640 1792x576 1920x576 2048x512"),
}


def _expand(listing: str) -> list[tuple[int, int]]:
    sizes = set()
    for entry in listing.split():
        width, height = (int(part) for part in entry.split("x"))
        sizes |= {(width, height), (height, width)}
    return sorted(sizes)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_kohya_lists(family: str) -> None:
    count, listing = KOHYA[family]
    d = family_defaults(family)
    buckets = kohya_buckets(d["resolution"], d["min"], d["max"], d["step"])
    assert len(buckets) == count
    assert buckets == _expand(listing)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_onetrainer_lists(family: str) -> None:
    count, listing = ONETRAINER[family]
    d = family_defaults(family)
    buckets = onetrainer_buckets(d["resolution"], d["quantum"])
    assert len(buckets) == count
    assert buckets == _expand(listing)


def test_family_defaults() -> None:
    assert family_defaults("sd2-base") == family_defaults("sd1")
    assert family_defaults("sdxl") == {"resolution": 1024, "min": 512, "max": 2048, "step": 64, "quantum": 64}
    assert family_defaults("sd2")["resolution"] == 768
    with pytest.raises(ValueError, match="unknown base-model family"):
        family_defaults("flux")


def test_spec_example_both_trainers() -> None:
    kohya = kohya_predict(1344, 1792, resolution=1024, min_=512, max_=2048, step=64)
    onetrainer = onetrainer_predict(1344, 1792, resolution=1024, quantum=64)
    for fit in (kohya, onetrainer):
        assert fit.bucket == (896, 1152)
        assert fit.resized == (896, 1195)
        assert round(fit.crop_loss * 100, 1) == 3.6
        assert fit.upscale is False


def test_kohya_exact_size_is_its_own_bucket() -> None:
    fit = kohya_predict(1216, 832, resolution=1024, min_=512, max_=2048, step=64)
    assert fit == BucketFit(bucket=(1216, 832), resized=(1216, 832), crop_loss=0.0, upscale=False)


def test_kohya_wide_image_fits_height_and_small_image_upscales() -> None:
    fit = kohya_predict(400, 200, resolution=512, min_=256, max_=1024, step=64)
    assert fit.bucket == (704, 320)  # w/h 2.2 is the sd1 bucket nearest to 2.0
    assert fit.resized == (704, 352)  # narrower than the bucket: the width sets the scale
    assert fit.upscale is True
    assert fit.crop_loss == pytest.approx(1 - 320 / 352)


def test_kohya_and_onetrainer_can_differ() -> None:
    kohya = kohya_predict(1000, 520, resolution=1024, min_=512, max_=2048, step=64)
    onetrainer = onetrainer_predict(1000, 520, resolution=1024, quantum=64)
    assert kohya.bucket == (1408, 704)
    assert onetrainer.bucket == (1472, 704)


def test_kohya_no_upscale() -> None:
    big = kohya_predict(1344, 1792, resolution=1024, min_=512, max_=2048, step=64, no_upscale=True)
    assert big.bucket == (832, 1088)
    assert big.resized == (832, 1109)
    small = kohya_predict(600, 800, resolution=1024, min_=512, max_=2048, step=64, no_upscale=True)
    assert small == BucketFit(
        bucket=(576, 768), resized=(600, 800), crop_loss=pytest.approx(0.0784), upscale=False
    )


def test_onetrainer_downscales_a_square_to_the_square_bucket() -> None:
    fit = onetrainer_predict(2000, 2000, resolution=512, quantum=8)
    assert fit == BucketFit(bucket=(512, 512), resized=(512, 512), crop_loss=0.0, upscale=False)


@pytest.mark.parametrize("size", [(0, 10), (10, -1)])
def test_bad_sizes_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        kohya_predict(*size, resolution=512, min_=256, max_=1024, step=64)
    with pytest.raises(ValueError, match="must be positive"):
        onetrainer_predict(*size, resolution=512, quantum=8)


def test_lists_are_fresh_copies_and_bad_settings_refused() -> None:
    first = kohya_buckets(512, 256, 1024, 64)
    first.clear()
    assert len(kohya_buckets(512, 256, 1024, 64)) == 17
    with pytest.raises(ValueError, match="must be positive"):
        kohya_buckets(512, 256, 1024, 0)
    with pytest.raises(ValueError, match="must be positive"):
        onetrainer_buckets(512, 0)
