"""Detector engine: YOLO decoding, numpy NMS, crops with a clamped margin (docs/taggers.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned, RegionBox
from apps.taggers.engine.detector import FixedDetector, OnnxDetector, crop, mask, nms
from tests.taggers.wd_fixtures import write_detector_dir


def _raw(boxes: list[tuple[float, float, float, float, float, float]]) -> np.ndarray:
    """[1, 4 + 2, K] from (cx, cy, w, h, score_person, score_face) rows."""
    return np.asarray(boxes, dtype=np.float32).T[None]


def test_nms_drops_overlaps_above_iou_and_keeps_the_best() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.5], dtype=np.float32)
    assert nms(boxes, scores, 0.5) == [1, 2]


def test_nms_keeps_boxes_overlapping_less_than_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], dtype=np.float32)  # IoU 4/16 = 0.25
    assert nms(boxes, np.array([0.9, 0.8], dtype=np.float32), 0.5) == [0, 1]


def test_onnx_detector_decodes_confidence_nms_and_labels(tmp_path: Path) -> None:
    raw = _raw(
        [
            (16, 16, 16, 16, 0.9, 0.1),  # kept: person
            (17, 16, 16, 16, 0.8, 0.0),  # suppressed by the first (IoU ≈ 0.88)
            (48, 48, 8, 16, 0.1, 0.7),  # kept: face
            (40, 10, 8, 8, 0.2, 0.25),  # below conf 0.3
        ]
    )
    det = OnnxDetector()
    det.load(BackendSpec(kind="x", model_ref=str(write_detector_dir(tmp_path, raw, ["person", "face"]))))
    (boxes,) = det.run([Image.new("RGB", (200, 100), (9, 9, 9))])
    assert [(b.label, round(b.score, 2)) for b in boxes] == [("person", 0.9), ("face", 0.7)]
    assert (boxes[0].x0, boxes[0].y0, boxes[0].x1, boxes[0].y1) == (0.125, 0.125, 0.375, 0.375)


def test_onnx_detector_one_output_list_per_image(tmp_path: Path) -> None:
    det = OnnxDetector()
    path = write_detector_dir(tmp_path, _raw([(16, 16, 16, 16, 0.9, 0.1)]), ["person", "face"])
    det.load(BackendSpec(kind="detector", model_ref=str(path)))
    out = det.run([Image.new("RGB", (30, 30))] * 7)
    assert [len(b) for b in out] == [1] * 7


def test_detector_without_labels_is_not_provisioned(tmp_path: Path) -> None:
    path = write_detector_dir(tmp_path, _raw([(16, 16, 16, 16, 0.9, 0.1)]), ["person", "face"])
    (path / "labels.json").unlink()
    with pytest.raises(ModelNotProvisioned, match=r"labels\.json"):
        OnnxDetector().load(BackendSpec(kind="x", model_ref=str(path)))


def test_crop_adds_ten_percent_margin() -> None:
    img = Image.new("RGB", (100, 100))
    assert crop(img, RegionBox(0.2, 0.2, 0.6, 0.4, 1.0, "p")).size == (48, 24)


def test_crop_margin_is_clamped_to_the_image() -> None:
    img = Image.new("RGB", (100, 50))
    assert crop(img, (0.0, 0.0, 1.0, 1.0)).size == (100, 50)


def test_mask_fills_boxes_grey() -> None:
    img = mask(Image.new("RGB", (10, 10), (255, 0, 0)), [(0.0, 0.0, 0.5, 1.0)])
    assert img.getpixel((2, 5)) == (128, 128, 128)
    assert img.getpixel((8, 5)) == (255, 0, 0)


def test_fixed_detector_gives_the_same_boxes_per_image() -> None:
    boxes = [[0, 0, 0.5, 1, "left"], [0.5, 0, 1, 1]]
    out = FixedDetector().run([Image.new("RGB", (4, 4))] * 3, {"boxes": boxes})
    assert [[b.label for b in row] for row in out] == [["left", "person"]] * 3
