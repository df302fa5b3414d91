"""Region detectors: YOLO-style ONNX exports run by onnxruntime (never the ultralytics runtime),
NMS in numpy, crops with a clamped margin; plus a fixed-box detector for dry runs and tests
(docs/taggers.md#detectors-and-captioners)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageOps

from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned, RegionBox, UnsupportedLabelFormat

CONF_THRESHOLD = 0.3
IOU_THRESHOLD = 0.5
CROP_MARGIN = 0.1
REQUIRED_FILES = ("model.onnx", "labels.json")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = IOU_THRESHOLD) -> list[int]:
    """Greedy non-maximum suppression over [N, 4] xyxy boxes; kept indices, best score first."""
    if boxes.size == 0:
        return []
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(0.0, x1 - x0) * np.maximum(0.0, y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[iou <= iou_threshold]
    return keep


def decode_yolo(
    output: np.ndarray,
    labels: Sequence[str],
    input_size: tuple[int, int],
    conf: float = CONF_THRESHOLD,
    iou: float = IOU_THRESHOLD,
) -> list[RegionBox]:
    """YOLOv8-style head [4 + C, N] (cx, cy, w, h in input pixels, then class scores) → boxes in
    fractions of the input, after the confidence cut and NMS."""
    if output.ndim == 3:
        output = output[0]
    if output.shape[0] != 4 + len(labels):
        raise UnsupportedLabelFormat(
            f"detector output has {output.shape[0]} rows; expected 4 + {len(labels)} labels."
        )
    scores = output[4:, :]
    best = scores.max(axis=0)
    keep_conf = best > conf
    if not keep_conf.any():
        return []
    cand = output[:, keep_conf].T
    cx, cy, w, h = cand[:, 0], cand[:, 1], cand[:, 2], cand[:, 3]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    cls_scores = cand[:, 4:]
    cand_best = cls_scores.max(axis=1)
    width, height = input_size
    out = []
    for i in nms(xyxy, cand_best, iou):
        box = xyxy[i]
        cls = int(cls_scores[i].argmax())
        out.append(
            RegionBox(
                x0=_clamp01(box[0] / width),
                y0=_clamp01(box[1] / height),
                x1=_clamp01(box[2] / width),
                y1=_clamp01(box[3] / height),
                score=float(cand_best[i]),
                label=labels[cls],
            )
        )
    return [b for b in out if b.x1 > b.x0 and b.y1 > b.y0]


def _clamp01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def crop(image: Image.Image, box: RegionBox | Sequence[float], margin: float = CROP_MARGIN) -> Image.Image:
    """The region plus `margin` of its width/height on each side, clamped to the image."""
    if isinstance(box, RegionBox):
        x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    else:
        x0, y0, x1, y1 = box
    width, height = image.size
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    # Rounded first so that 0.42 × 100 is 42, not 43 after float noise.
    left = max(0, math.floor(round((x0 - mx) * width, 6)))
    top = max(0, math.floor(round((y0 - my) * height, 6)))
    right = min(width, math.ceil(round((x1 + mx) * width, 6)))
    bottom = min(height, math.ceil(round((y1 + my) * height, 6)))
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    return image.crop((left, top, right, bottom))


def mask(image: Image.Image, boxes: Sequence[RegionBox | Sequence[float]], fill: int = 128) -> Image.Image:
    """The image with every box filled grey (the `image_masked:<step>` input)."""
    out = ImageOps.exif_transpose(image).convert("RGB")
    width, height = out.size
    for box in boxes:
        x0, y0, x1, y1 = (box.x0, box.y0, box.x1, box.y1) if isinstance(box, RegionBox) else box
        out.paste(
            (fill, fill, fill),
            (math.floor(x0 * width), math.floor(y0 * height), math.ceil(x1 * width), math.ceil(y1 * height)),
        )
    return out


class OnnxDetector:
    """`detector` backend: a directory with model.onnx (YOLO export, NCHW RGB 0–1) and labels.json
    (a list of class names)."""

    kind: ClassVar[str] = "detector"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def __init__(self) -> None:
        self.labels: list[str] = []
        self._session: Any = None
        self._input_name = ""
        self._fixed: tuple[int, int] | None = None

    def load(self, spec: BackendSpec, device: str = "cpu") -> None:
        """spec.model_ref: the model directory (absolute); spec.options["name"]: its name."""
        model_dir = Path(spec.model_ref)
        name = spec.options.get("name")
        missing = [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]
        if missing:
            raise ModelNotProvisioned(
                f"Detector {name or model_dir.name!r} is not provisioned: {model_dir} lacks "
                f"{', '.join(missing)}. Run `manage.py models provision detector <owner/repo> "
                f"--name {name or model_dir.name}`.",
                details={"directory": str(model_dir), "missing": missing},
            )
        labels = json.loads((model_dir / "labels.json").read_text(encoding="utf-8"))
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise UnsupportedLabelFormat(f"{model_dir.name}/labels.json must be a non-empty list of names.")
        self.labels = labels

        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider",) if device.startswith("cuda") and p in available]
        providers.append("CPUExecutionProvider")
        self._session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=providers)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self._fixed = (int(w), int(h)) if isinstance(h, int) and isinstance(w, int) else None

    def unload(self) -> None:
        self._session = None

    def _input(self, image: Image.Image, max_size: int) -> tuple[np.ndarray, tuple[int, int]]:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
        if self._fixed:
            size = self._fixed
        else:
            ratio = min(1.0, max_size / max(rgb.size))
            size = (
                int(math.ceil(rgb.width * ratio / 32) * 32),
                int(math.ceil(rgb.height * ratio / 32) * 32),
            )
        resized = rgb.resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        return np.ascontiguousarray(arr), size

    def run(
        self, images: Sequence[Image.Image], params: Mapping[str, Any] | None = None
    ) -> list[list[RegionBox]]:
        if self._session is None:
            raise RuntimeError("OnnxDetector.run before load")
        params = params or {}
        conf = float(params.get("conf", CONF_THRESHOLD))
        iou = float(params.get("iou", IOU_THRESHOLD))
        max_size = int(params.get("max_size", 640))
        out = []
        for image in images:
            arr, size = self._input(image, max_size)
            raw = self._session.run(None, {self._input_name: arr})[0]
            out.append(decode_yolo(np.asarray(raw), self.labels, size, conf, iou))
        return out


class FixedDetector:
    """Returns the same boxes for every image (params `boxes`: [[x0, y0, x1, y1, label?], …]):
    dry runs of a scheme without a model, and tests."""

    kind: ClassVar[str] = "detector"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def load(self, spec: BackendSpec | None = None, device: str = "cpu") -> None:
        return None

    def unload(self) -> None:
        return None

    def run(
        self, images: Sequence[Image.Image], params: Mapping[str, Any] | None = None
    ) -> list[list[RegionBox]]:
        boxes = []
        for spec in (params or {}).get("boxes", []):
            x0, y0, x1, y1 = (float(v) for v in spec[:4])
            label = str(spec[4]) if len(spec) > 4 else "person"
            boxes.append(RegionBox(x0, y0, x1, y1, 1.0, label))
        return [list(boxes) for _ in images]
