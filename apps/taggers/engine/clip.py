"""open_clip backends: image embeddings (`clip_embed`) and the zero-shot text matrix
(docs/taggers.md#clip).

Model references (docs/taggers.md#model-references), relative to BAGGINTAG_MODEL_DIR:

* `local-dir:<dir>`: `<dir>/open_clip_config.json` (`model_cfg`, `preprocess_cfg`) and
  `<dir>/open_clip_model.safetensors`;
* `<built-in config name>|<weights file>`: one of open_clip's configs and a weights **file**.

Pretrained tags (`openai`, `laion2b_s34b_b79k`) and `hf-hub:` refs are refused: they download.
Reading and checking refs needs no ML package; torch and open_clip are imported only by
`ClipModel.load()` and the functions below it, which only workers call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from apps.taggers.engine.base import (
    EmbeddingSpaceMismatch,
    InvalidModelRef,
    Item,
    ModelNotProvisioned,
    Output,
)

if TYPE_CHECKING:
    import numpy as np

LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
RESIZE_MODES = ("squash", "longest", "shortest")
DEFAULT_RESIZE_MODE = "squash"  # 'shortest' centre-crops and loses the edges
TEXT_BATCH = 256  # texts per text-tower call when building a zero-shot matrix
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# Templates for the zero-shot baseline (illustration-oriented; editable per tagger).
DEFAULT_TEMPLATES = (
    "{}.",
    "a picture of {}.",
    "an illustration of {}.",
    "a drawing of {}.",
    "a photo of {}.",
    "artwork showing {}.",
)


@dataclass(frozen=True)
class ClipRef:
    """A parsed model reference: the files it needs, relative to the model directory."""

    ref: str
    directory: str  # the provisioned directory (for messages and MANIFEST.json)
    config_name: str  # built-in config name, or "" for local-dir
    weights: str  # relative path of the weights file

    @property
    def files(self) -> tuple[str, ...]:
        if self.config_name:
            return (self.weights,)
        return (f"{self.directory}/{CONFIG_FILE}", self.weights)


def _safe_relative(path: str, what: str, ref: str) -> str:
    pure = PurePosixPath(path.strip())
    control = any(ord(c) < 32 or ord(c) == 127 for c in path)
    if not path.strip() or pure.is_absolute() or ".." in pure.parts or "\\" in path or control:
        raise InvalidModelRef(
            f"{what} {path!r} in {ref!r} must be a path relative to BAGGINTAG_MODEL_DIR without '..'.",
            code="taggers.invalid_model_ref",
        )
    return str(pure)


def parse_ref(ref: str) -> ClipRef:
    """Read a model reference, refusing what would download or guess (InvalidModelRef)."""
    ref = ref.strip()
    hint = (
        "Use `local-dir:open_clip/<name>` (provisioned with `manage.py models provision`) or "
        "`<config name>|<weights file>` with a .safetensors file under BAGGINTAG_MODEL_DIR."
    )
    if ref.startswith("hf-hub:"):
        raise InvalidModelRef(f"{ref!r}: hf-hub: references download at run time. {hint}")
    if ref.startswith(LOCAL_DIR):
        directory = _safe_relative(ref[len(LOCAL_DIR) :], "The directory", ref)
        return ClipRef(ref, directory, "", f"{directory}/{WEIGHTS_FILE}")
    name, sep, weights = ref.partition("|")
    if not sep or not name.strip():
        raise InvalidModelRef(f"{ref!r} names no weights file. {hint}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name.strip()):
        raise InvalidModelRef(f"{name.strip()!r} is not an open_clip config name. {hint}")
    weights = weights.strip()
    if not weights.lower().endswith(WEIGHT_SUFFIXES):
        raise InvalidModelRef(
            f"{weights!r} in {ref!r} is not a weights file (pretrained tags such as 'openai' or "
            f"'laion2b_s34b_b79k' download at run time). {hint}"
        )
    weights = _safe_relative(weights, "The weights file", ref)
    return ClipRef(ref, str(PurePosixPath(weights).parent), name.strip(), weights)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the filesystem is not there either
        return False


def missing_files(ref: ClipRef, model_root: Path) -> list[str]:
    return [name for name in ref.files if not _is_file(model_root / name)]


def require_provisioned(ref: ClipRef, model_root: Path, *, model: str) -> None:
    """Raise ModelNotProvisioned naming the model, kind, directory and missing files."""
    missing = missing_files(ref, model_root)
    if not missing:
        return
    raise ModelNotProvisioned(
        f"Model {model!r} (open_clip) is not provisioned: expected directory {ref.directory!r} under "
        f"BAGGINTAG_MODEL_DIR ({model_root}) is missing {', '.join(missing)}. Copy the weights there with "
        f"`manage.py models provision open_clip <owner/repo> --name <name> --from-dir <mirror>`.",
        details={"model": model, "kind": "open_clip", "directory": ref.directory, "missing": missing},
    )


def _builtin_config(name: str) -> dict[str, Any] | None:
    """open_clip's bundled config `name` (read from its package folder, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model_configs" / f"{name}.json"
    return json.loads(path.read_text()) if _is_file(path) else None


@dataclass(frozen=True)
class ModelInfo:
    """What a space records about a model before any weights are loaded."""

    dim: int
    preprocess_cfg: dict[str, Any]
    has_text_tower: bool


def model_info(ref: ClipRef, model_root: Path, *, resize_mode: str = DEFAULT_RESIZE_MODE) -> ModelInfo:
    """Embedding size and the full preprocessing (with `resize_mode`) from the config files."""
    if resize_mode not in RESIZE_MODES:
        raise InvalidModelRef(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, not {resize_mode!r}.")
    if ref.config_name:
        model_cfg = _builtin_config(ref.config_name)
        if model_cfg is None:
            raise InvalidModelRef(f"open_clip has no built-in config {ref.config_name!r}.")
        given: dict[str, Any] = {}
    else:
        try:
            raw = json.loads((model_root / ref.directory / CONFIG_FILE).read_text())
            model_cfg, given = raw["model_cfg"], dict(raw.get("preprocess_cfg") or {})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{ref.directory}/{CONFIG_FILE} is not an open_clip config ({exc})."
            raise InvalidModelRef(problem) from exc
    vision = model_cfg.get("vision_cfg") or {}
    size = given.get("size", vision.get("image_size", 224))
    cfg = {
        "size": list(size) if isinstance(size, list | tuple) else int(size),
        "mode": "RGB",
        "mean": list(given.get("mean", OPENAI_MEAN)),
        "std": list(given.get("std", OPENAI_STD)),
        "interpolation": given.get("interpolation", "bicubic"),
        "resize_mode": resize_mode,
        "fill_color": int(given.get("fill_color", 0)),
    }
    return ModelInfo(int(model_cfg["embed_dim"]), cfg, bool(model_cfg.get("text_cfg")))


def preprocess_sha256(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_hash_lock = threading.Lock()
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file (cached per path, size and mtime in this process)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    with _hash_lock:
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


# Pixels --------------------------------------------------------------------------------------


def decode(handle: IO[bytes], *, draft_size: int | None = None) -> Any:
    """An RGB PIL image: EXIF orientation applied, transparency composited onto white. JPEGs
    decode at a reduced scale (`draft`) when `draft_size` says how large they need to be."""
    from PIL import Image, ImageOps

    image: Image.Image = Image.open(handle)
    if draft_size and image.format == "JPEG":
        image.draft("RGB", (draft_size, draft_size))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return image.convert("RGB")


# The model (workers only) --------------------------------------------------------------------


def device_default() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ClipModel:
    """A loaded open_clip model bound to one space: its weights hash was checked on load."""

    kind = "clip_embed"
    needs = frozenset({"pixels"})

    def __init__(self) -> None:
        self.model: Any = None
        self.transform: Callable[[Any], Any] | None = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self.weights_sha256 = ""

    def load(
        self,
        ref: ClipRef,
        model_root: Path,
        *,
        preprocess_cfg: dict[str, Any],
        expected_sha256: str,
        device: str | None = None,
        model: str = "",
    ) -> None:
        """Check files and hash (ModelNotProvisioned, EmbeddingSpaceMismatch) before importing
        torch; then build the model in eval mode with the space's preprocessing."""
        require_provisioned(ref, model_root, model=model or ref.ref)
        weights = model_root / ref.weights
        actual = file_sha256(weights)
        if expected_sha256 and actual != expected_sha256:
            raise EmbeddingSpaceMismatch(
                f"The weights at {ref.weights} hash to {actual[:12]}…, but space {model!r} was made with "
                f"{expected_sha256[:12]}…: new weights need a new embedding space. Nothing was written.",
                details={"expected": expected_sha256, "actual": actual},
            )
        import open_clip
        import torch
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.device = device or device_default()
        if ref.config_name:
            name, pretrained = ref.config_name, str(weights)
        else:
            name, pretrained = LOCAL_DIR + str(model_root / ref.directory), None
        created = open_clip.create_model(
            name,
            pretrained=pretrained,
            device=self.device,
            pretrained_text=False,
            pretrained_image=False,
            force_preprocess_cfg=dict(preprocess_cfg),
        )
        created.eval()
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in preprocess_cfg.items()}
        self.transform = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        self.model = created
        self.weights_sha256 = actual
        self.tokenizer = open_clip.get_tokenizer(name) if ref.config_name else _local_tokenizer(name)
        torch.set_grad_enabled(False)

    def unload(self) -> None:
        self.model = self.transform = self.tokenizer = None

    def run(self, items: Sequence[Item], params: Mapping[str, Any]) -> list[Output]:
        """The Backend interface: one L2-normalised fp16 vector per item (`path`), in order,
        in batches of `params["batch"]` (128)."""
        batch = max(1, int(params.get("batch", 128)))
        outputs: list[Output] = []
        for start in range(0, len(items), batch):
            tensors = []
            for item in items[start : start + batch]:
                with open(item.path, "rb") as handle:
                    tensors.append(self.preprocess(handle))
            outputs.extend(Output(embedding=v, score_kind="cosine") for v in self.embed(tensors))
        return outputs

    def preprocess(self, handle: IO[bytes]) -> Any:
        """Decode and preprocess one image into a CHW float tensor (thread-safe)."""
        assert self.transform is not None
        size = self.input_size
        return self.transform(decode(handle, draft_size=2 * size))

    @property
    def input_size(self) -> int:
        size = self.model.visual.preprocess_cfg["size"] if self.model is not None else 224
        return int(max(size) if isinstance(size, list | tuple) else size)

    def embed(self, tensors: Sequence[Any]) -> np.ndarray:
        """L2-normalised fp16 vectors (N×D, numpy) of preprocessed images, in order."""
        import torch

        batch = torch.stack(list(tensors)).to(self.device, non_blocking=True)
        with torch.inference_mode(), _autocast(self.device):
            vectors = self.model.encode_image(batch, normalize=True)
        return _fp16_normalised(vectors)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised fp32 text vectors (N×D)."""
        import torch

        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode(), _autocast(self.device):
            vectors = self.model.encode_text(tokens, normalize=True)
        return vectors.float().cpu().numpy()

    def text_matrix(self, names: Sequence[str], templates: Iterable[str] = DEFAULT_TEMPLATES) -> np.ndarray:
        """The zero-shot classifier: per name, every template filled in, encoded, normalised,
        averaged and renormalised → D×T fp32 (open_clip's zero_shot_classifier). The texts are
        encoded in batches of TEXT_BATCH whatever the names, not one call per name."""
        import numpy as np

        templates = list(templates)
        texts = [t.format(name) for name in names for t in templates]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.concatenate(
            [self.encode_text(texts[i : i + TEXT_BATCH]) for i in range(0, len(texts), TEXT_BATCH)]
        )
        means = vectors.reshape(len(names), len(templates), -1).mean(axis=1)
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(means.T, dtype=np.float32)

    def logit_params(self) -> tuple[float, float | None]:
        """(exp(logit_scale), logit_bias or None): a SigLIP-style model (one with a
        `logit_bias`) turns a cosine into a probability sigmoid(scale·cos + bias)."""
        scale = getattr(self.model, "logit_scale", None)
        bias = getattr(self.model, "logit_bias", None)
        value = float(scale.detach().float().exp().item()) if scale is not None else 1.0
        return value, (float(bias.detach().float().item()) if bias is not None else None)


def _local_tokenizer(name: str) -> Any:
    import open_clip

    return open_clip.get_tokenizer(name)


def _autocast(device: str) -> Any:
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _fp16_normalised(vectors: Any) -> np.ndarray:
    """Renormalise in fp32 and cast: the stored fp16 vector has norm 1 ± 1e-3."""
    import torch

    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return vectors.cpu().numpy().astype("<f2")


def threads_default() -> int:
    return max(1, os.cpu_count() or 1)
