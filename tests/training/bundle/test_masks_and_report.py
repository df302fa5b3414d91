"""Loss masks (docs/export-bundle.md#masks) and the §8.3 residual dropout table of
EXPORT_REPORT.md, on hand-made plans."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from apps.training.bundle.errors import BundleError
from apps.training.bundle.images import loss_mask
from apps.training.logic.captions import wildcard_rows
from apps.training.plan import CaptionPolicy, Plan, TypePolicy

WILDCARD_POLICY = CaptionPolicy(
    types={
        "trigger": TypePolicy("trigger", zone="prefix"),
        "general": TypePolicy("general", zone="flex", drop_rate=0.1),
        "pose": TypePolicy("pose", zone="flex", drop_rate=0.3),
        "clothing": TypePolicy("clothing", zone="flex", drop_rate=0.5),
        "quality": TypePolicy("quality", zone="suffix"),
    },
    kohya_per_type_dropout="wildcard",
)


def test_loss_mask_maps_the_box_through_the_bucket_crop() -> None:
    # 1000×500 resized to 768×384, centre-cropped to a 704×384 bucket: 32 px off the left.
    fit = SimpleNamespace(bucket=(704, 384), resized=(768, 384))
    mask = loss_mask((0.5, 0.25, 1.0, 0.75), (704, 384), fit)
    assert mask.size == (704, 384)
    assert mask.mode == "L"
    assert mask.getbbox() == (352, 96, 704, 288)  # x 0.5·768 − 32 = 352, right clamped; y 96–288
    assert mask.getpixel((351, 200)) == 0
    assert mask.getpixel((352, 200)) == 255
    flipped = loss_mask((0.0, 0.25, 0.5, 0.75), (704, 384), fit, mirror=True)  # the copy's own box
    assert flipped.tobytes() == mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT).tobytes()


def test_loss_mask_without_a_box_or_outside_the_crop_is_white() -> None:
    assert loss_mask(None, (64, 32)).getextrema() == (255, 255)
    fit = SimpleNamespace(bucket=(512, 512), resized=(1024, 512))  # 256 px cropped each side
    assert loss_mask((0.0, 0.0, 0.2, 1.0), (512, 512), fit).getextrema() == (255, 255)
    unscaled = loss_mask((0.25, 0.0, 0.5, 0.5), (200, 100))
    assert unscaled.getbbox() == (50, 0, 100, 50)


def test_masks_sit_beside_every_image_of_a_masked_partition(
    make_plan: Callable[..., Plan], export: Callable[..., Path]
) -> None:
    plan = make_plan(targets=("kohya",), images="bucket", names=["plain.png", "large.jpg", "rotated.jpg"])
    plan = dataclasses.replace(plan, export=dataclasses.replace(plan.export, kohya_masks="focus"))
    folder = export(plan)
    images = sorted(p for p in (folder / "data" / "mychar--all").iterdir() if p.suffix != ".caption")
    masks = sorted((folder / "masks" / "mychar--all").iterdir())
    assert [p.stem for p in images] == [p.stem for p in masks]
    assert len(masks) == 3
    for image, mask in zip(images, masks, strict=True):
        assert Image.open(image).size == Image.open(mask).size
    extrema = sorted(Image.open(m).getextrema() for m in masks)
    assert (0, 255) in extrema
    assert (255, 255) in extrema
    toml = (folder / "kohya" / "dataset.toml").read_text()
    assert 'conditioning_data_dir = "/srv/train/mychar/masks/mychar--all"' in toml
    assert "masked_loss = true" in (folder / "kohya" / "args.toml").read_text()


def test_masks_with_a_reg_subset_fail_l15(
    make_plan: Callable[..., Plan], export: Callable[..., Path]
) -> None:
    plan = make_plan(targets=("kohya",), names=["plain.png", "tiny.jpg"], reg=("tiny.jpg",))
    plan = dataclasses.replace(plan, export=dataclasses.replace(plan.export, kohya_masks="focus"))
    with pytest.raises(BundleError) as caught:
        export(plan)
    assert [f.code for f in caught.value.findings] == ["L15"]


def test_wildcard_rows_give_exact_residuals() -> None:
    rows = {r.type: r for r in wildcard_rows(WILDCARD_POLICY) or []}
    assert set(rows) == {"general", "pose", "clothing"}
    general, pose, clothing = rows["general"], rows["pose"], rows["clothing"]
    assert (general.empty, general.options, general.achieved, general.residual) == (0, 1, 0.1, 0.0)
    # pose: q = 1 − 0.7/0.9 = 2/9 ≈ 0.2222; nearest m/n with n ≤ 8 is 1/5 → 1 − 0.8·0.9 = 0.28
    assert (pose.empty, pose.options) == (1, 5)
    assert pose.achieved == pytest.approx(0.28, abs=1e-12)
    assert pose.residual == pytest.approx(-0.02, abs=1e-12)
    # clothing: q = 1 − 0.5/0.9 = 4/9 ≈ 0.4444; nearest is 3/7 → 1 − (4/7)·0.9 = 0.485714…
    assert (clothing.empty, clothing.options) == (3, 7)
    assert clothing.achieved == pytest.approx(1 - 4 / 7 * 0.9, abs=1e-12)
    assert clothing.residual == pytest.approx(1 - 4 / 7 * 0.9 - 0.5, abs=1e-12)
    assert wildcard_rows(dataclasses.replace(WILDCARD_POLICY, kohya_per_type_dropout="")) is None


def test_export_report_prints_the_residual_table(
    make_plan: Callable[..., Plan], export: Callable[..., Path]
) -> None:
    plan = make_plan(targets=("kohya",), names=["plain.png", "tiny.jpg"])
    folder = export(dataclasses.replace(plan, caption_policy=WILDCARD_POLICY))
    report = (folder / "EXPORT_REPORT.md").read_text()
    assert "## kohya wildcard dropout (residual error)" in report
    assert "Datasets mychar: trainer rate r = 0.1." in report
    assert "| clothing | 0.5 | 3/7 | 0.485714 | -0.014286 |" in report
    assert "| general | 0.1 | 0/1 | 0.100000 | +0.000000 |" in report
    assert "| pose | 0.3 | 1/5 | 0.280000 | -0.020000 |" in report
    plain = (export(plan) / "EXPORT_REPORT.md").read_text()
    assert "wildcard dropout" not in plain
