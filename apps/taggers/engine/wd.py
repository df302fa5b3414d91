"""WD-style ONNX taggers (SmilingWolf wd-v1-4 v2 and wd v3): labels, preprocessing, ratings, MCut.

No Django imports beyond the error classes; onnxruntime is imported only inside `WDBackend.load`,
so importing this module from a web process stays cheap (docs/taggers.md#wd-taggers).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageOps

from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned, UnsupportedLabelFormat

LABELS_HEADER = ["tag_id", "name", "category", "count"]
CATEGORY_RATING = 9
CATEGORY_GENERAL = 0
CATEGORY_CHARACTER = 4
REQUIRED_FILES = ("model.onnx", "selected_tags.csv")

# Each model card's published precision = recall threshold for general tags.
CARD_THRESHOLDS: dict[str, float] = {
    "wd-v1-4-vit-tagger-v2": 0.3537,
    "wd-v1-4-convnext-tagger-v2": 0.3685,
    "wd-v1-4-convnextv2-tagger-v2": 0.3710,
    "wd-v1-4-swinv2-tagger-v2": 0.3771,
    "wd-vit-tagger-v3": 0.2614,
    "wd-convnext-tagger-v3": 0.2682,
    "wd-swinv2-tagger-v3": 0.2653,
    "wd-eva02-large-tagger-v3": 0.5296,
}
DEFAULT_GENERAL_THRESHOLD = 0.35
DEFAULT_CHARACTER_THRESHOLD = 0.85
CHARACTER_MCUT_FLOOR = 0.15

# Danbooru tags whose underscores are part of the face, not word separators.
KAOMOJIS = frozenset(
    {
        "0_0",
        "(o)_(o)",
        "+_+",
        "+_-",
        "._.",
        "<o>_<o>",
        "<|>_<|>",
        "=_=",
        ">_<",
        "3_3",
        "6_9",
        ">_o",
        "@_@",
        "^_^",
        "o_o",
        "u_u",
        "x_x",
        "|_|",
        "||_||",
    }
)


@dataclass(frozen=True)
class Label:
    name: str
    category: int

    @property
    def display(self) -> str:
        return display_name(self.name)


@dataclass
class WDOutput:
    """One image's result. Scores are keyed by the label's row index in selected_tags.csv."""

    ratings: dict[int, float]
    rating: int  # the argmax row: exactly one rating is marked
    general: dict[int, float]
    character: dict[int, float]
    selected: list[int]  # general and character rows above their threshold, best first
    embedding: np.ndarray | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


def onnx_device() -> str:
    """ "cuda" when onnxruntime can use a GPU here, else "cpu" (the embedded mode runs on CPU)."""
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a worker without the ML requirements
        return "cpu"
    return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"


def display_name(name: str) -> str:
    """`long_hair` → "long hair"; kaomoji such as `^_^` stay as they are."""
    if name in KAOMOJIS or not any(ch.isalpha() for ch in name):
        return name
    return name.replace("_", " ")


def read_labels(path: Path) -> list[Label]:
    """Rows of selected_tags.csv in output-column order; any other layout is refused."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != LABELS_HEADER:
            raise UnsupportedLabelFormat(
                f"{path.name} must start with the header {','.join(LABELS_HEADER)} "
                f"(found {','.join(header or []) or 'nothing'}); only WD v2/v3 label files are supported."
            )
        labels = []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 4:
                raise UnsupportedLabelFormat(
                    f"{path.name} line {lineno}: expected 4 columns, got {len(row)}."
                )
            try:
                category = int(row[2])
            except ValueError:
                raise UnsupportedLabelFormat(
                    f"{path.name} line {lineno}: category {row[2]!r} is not an integer."
                ) from None
            labels.append(Label(name=row[1], category=category))
    if not labels:
        raise UnsupportedLabelFormat(f"{path.name} has no label rows.")
    return labels


def mcut_threshold(scores: Sequence[float] | np.ndarray) -> float | None:
    """Maximum-cut threshold (Largeron, Moulin & Géry 2012): the midpoint of the largest drop
    between neighbouring scores sorted descending. None when there are fewer than two scores."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if ordered.size < 2:
        return None
    drops = ordered[:-1] - ordered[1:]
    at = int(drops.argmax())
    return float((ordered[at] + ordered[at + 1]) / 2)


def prepare_image(image: Image.Image, size: int) -> np.ndarray:
    """One WD input: alpha onto white, padded to a centred white square, resized to size×size
    with BICUBIC, float32 0–255, BGR channel order, HWC."""
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = image.convert("RGB")
    side = max(flat.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(flat, ((side - flat.width) // 2, (side - flat.height) // 2))
    if side != size:
        square = square.resize((size, size), Image.Resampling.BICUBIC)
    rgb = np.asarray(square, dtype=np.float32)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def default_thresholds(model_name: str, manifest: Mapping[str, Any] | None) -> dict[str, float]:
    """General/character thresholds: MANIFEST.json `thresholds`, else the card's P=R point, else
    the imgutils defaults."""
    general = CARD_THRESHOLDS.get(model_name, DEFAULT_GENERAL_THRESHOLD)
    character = DEFAULT_CHARACTER_THRESHOLD
    given = (manifest or {}).get("thresholds") or {}
    if isinstance(given, Mapping):
        general = float(given.get("general", general))
        character = float(given.get("character", character))
    return {"general": general, "character": character}


class WDBackend:
    """`wd_onnx`: a directory with model.onnx and selected_tags.csv (docs/taggers.md#wd-taggers)."""

    kind: ClassVar[str] = "wd_onnx"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def __init__(self) -> None:
        self.labels: list[Label] = []
        self.size = 0
        self.batch_one = False
        self.thresholds: dict[str, float] = {}
        self._session: Any = None
        self._input_name = ""
        self._has_embedding = False
        self.rating_rows: list[int] = []
        self.general_rows: list[int] = []
        self.character_rows: list[int] = []

    def load(self, spec: BackendSpec, device: str = "cpu") -> None:
        """spec.model_ref: the model directory (absolute); spec.options["name"]: its name (for
        the card thresholds and messages; default the directory's name)."""
        model_dir = Path(spec.model_ref)
        name = spec.options.get("name")
        missing = [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]
        if missing:
            raise ModelNotProvisioned(
                f"WD tagger {name or model_dir.name!r} is not provisioned: {model_dir} lacks "
                f"{', '.join(missing)}. Run `manage.py models provision wd <owner/repo> "
                f"--name {name or model_dir.name}`.",
                details={"directory": str(model_dir), "missing": missing},
            )
        self.labels = read_labels(model_dir / "selected_tags.csv")
        manifest = None
        if (model_dir / "MANIFEST.json").is_file():
            manifest = json.loads((model_dir / "MANIFEST.json").read_text(encoding="utf-8"))
        self.thresholds = default_thresholds(name or model_dir.name, manifest)
        self.rating_rows = [i for i, lb in enumerate(self.labels) if lb.category == CATEGORY_RATING]
        self.general_rows = [i for i, lb in enumerate(self.labels) if lb.category == CATEGORY_GENERAL]
        self.character_rows = [i for i, lb in enumerate(self.labels) if lb.category == CATEGORY_CHARACTER]

        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider",) if device.startswith("cuda") and p in available]
        providers.append("CPUExecutionProvider")
        session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=providers)
        inputs = session.get_inputs()
        shape = inputs[0].shape
        if len(shape) != 4 or not isinstance(shape[1], int) or shape[1] != shape[2] or shape[3] != 3:
            raise UnsupportedLabelFormat(
                f"{model_dir / 'model.onnx'}: input shape {shape} is not [N, S, S, 3] (NHWC, square)."
            )
        outputs = session.get_outputs()
        columns = outputs[0].shape[-1]
        if isinstance(columns, int) and columns != len(self.labels):
            raise UnsupportedLabelFormat(
                f"{model_dir.name}: the model has {columns} output columns but selected_tags.csv "
                f"has {len(self.labels)} rows."
            )
        self.size = int(shape[1])
        self.batch_one = shape[0] == 1
        self._input_name = inputs[0].name
        self._has_embedding = len(outputs) > 1
        self._session = session

    def unload(self) -> None:
        self._session = None

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw probabilities [N, T] (and embeddings [N, D] when the graph has them)."""
        if self.batch_one:
            parts = [self._session.run(None, {self._input_name: batch[i : i + 1]}) for i in range(len(batch))]
            probs = np.concatenate([p[0] for p in parts])
            emb = np.concatenate([p[1] for p in parts]) if self._has_embedding else None
            return probs, emb
        out = self._session.run(None, {self._input_name: batch})
        return out[0], (out[1] if self._has_embedding else None)

    def run(self, images: Sequence[Image.Image], params: Mapping[str, Any] | None = None) -> list[WDOutput]:
        """One output per image, in order. params: general_threshold, character_threshold,
        mcut_general, mcut_character (bools), batch_size."""
        if self._session is None:
            raise RuntimeError("WDBackend.run before load")
        params = params or {}
        batch_size = max(1, int(params.get("batch_size", 32)))
        results: list[WDOutput] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = np.stack([prepare_image(img, self.size) for img in chunk])
            probs, emb = self.infer(batch)
            for j in range(len(chunk)):
                results.append(self._result(probs[j], None if emb is None else emb[j], params))
        return results

    def _result(self, probs: np.ndarray, emb: np.ndarray | None, params: Mapping[str, Any]) -> WDOutput:
        ratings = {i: float(probs[i]) for i in self.rating_rows}
        rating = max(ratings, key=lambda i: (ratings[i], -i)) if ratings else -1
        general = {i: float(probs[i]) for i in self.general_rows}
        character = {i: float(probs[i]) for i in self.character_rows}
        g_thr = float(params.get("general_threshold", self.thresholds["general"]))
        c_thr = float(params.get("character_threshold", self.thresholds["character"]))
        if params.get("mcut_general"):
            g_thr = mcut_threshold(list(general.values())) or g_thr
        if params.get("mcut_character"):
            cut = mcut_threshold(list(character.values()))
            c_thr = max(CHARACTER_MCUT_FLOOR, cut if cut is not None else c_thr)
        chosen = [(s, i) for i, s in general.items() if s > g_thr]
        chosen += [(s, i) for i, s in character.items() if s > c_thr]
        chosen.sort(key=lambda p: (-p[0], p[1]))
        return WDOutput(
            ratings=ratings,
            rating=rating,
            general=general,
            character=character,
            selected=[i for _, i in chosen],
            embedding=emb,
            thresholds={"general": g_thr, "character": c_thr},
        )
