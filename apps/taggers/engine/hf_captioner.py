"""A captioner from a local Hugging Face model folder, loaded offline (docs/taggers.md#local-captioners).

The tagger's `model_dir` (under BAGGINTAG_MODEL_DIR, e.g. `captioner/blip-base`) holds what
`save_pretrained` wrote for an image-to-text model and its processor (`config.json`, weights,
`preprocessor_config.json`, tokenizer files). Loading sets HF_HUB_OFFLINE=1 and
TRANSFORMERS_OFFLINE=1 before transformers is imported, passes `local_files_only=True` and never
`trust_remote_code` (architectures that need model-repo code, such as Florence-2, are refused;
serve them over HTTP instead). transformers and torch are imported only here, inside `load`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from apps.core.exceptions import DomainError
from apps.taggers.engine.base import BackendSpec, ModelNotProvisioned

DEFAULT_MAX_TOKENS = 60


class LocalCaptioner:
    """`params.backend = "local-dir"`: generate with the folder's model; params `max_tokens`."""

    kind: ClassVar[str] = "captioner"
    needs: ClassVar[frozenset[str]] = frozenset({"pixels"})

    def __init__(self) -> None:
        self.model: Any = None
        self.processor: Any = None
        self.device = "cpu"

    def load(self, spec: BackendSpec, device: str = "cpu") -> None:
        path = Path(spec.model_ref)
        if not (path / "config.json").is_file():
            raise ModelNotProvisioned(
                f"Captioner {spec.options.get('name', '')!r}: {path} holds no config.json; provision the "
                "model folder (save_pretrained output) under BAGGINTAG_MODEL_DIR.",
                details={"path": str(path)},
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import transformers
        except ImportError as exc:
            raise DomainError(
                "Local captioners need the transformers package on this worker (requirements-ml.txt).",
                code="taggers.backend_unavailable",
            ) from exc
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(
                str(path), local_files_only=True, trust_remote_code=False
            )
            # transformers 5 names the auto class AutoModelForImageTextToText; 4.x called it
            # AutoModelForVision2Seq (docs/taggers.md#local-captioners).
            auto = getattr(transformers, "AutoModelForImageTextToText", None) or getattr(  # noqa: B009
                transformers, "AutoModelForVision2Seq"
            )
            self.model = auto.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            raise DomainError(
                f"The captioner folder {path} could not be loaded offline as an image-to-text model ({exc}).",
                code="taggers.captioner_load",
            ) from exc
        self.device = device if device.startswith("cuda") else "cpu"
        self.model.to(self.device)
        self.model.eval()

    def unload(self) -> None:
        self.model = None
        self.processor = None

    def _one(self, image: Image.Image, prompt: str, max_tokens: int) -> str:
        import torch

        inputs = self.processor(images=image.convert("RGB"), text=prompt or None, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            tokens = self.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
        text = str(self.processor.batch_decode(tokens, skip_special_tokens=True)[0]).strip()
        if prompt and text.lower().startswith(prompt.strip().lower()):
            text = text[len(prompt.strip()) :].strip()  # conditional models repeat the prompt
        return text

    def run(
        self, images: Sequence[Image.Image], prompts: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> list[str]:
        if self.model is None:
            raise RuntimeError("load() first")
        max_tokens = int((params or {}).get("max_tokens", DEFAULT_MAX_TOKENS))
        return [self._one(img, prompt, max_tokens) for img, prompt in zip(images, prompts, strict=True)]
