"""The stored zero-shot text matrices (docs/taggers.md#stored-text-matrices).

Building a zero-shot tagger's D×T text matrix runs the space's text tower over every prompt
name × template; a step job that finds it stored neither builds it nor loads the model. A
matrix is stored per host under `BAGGINTAG_DATA_DIR/cache/text/<space id>/<key>.npz` (the
matrix, the model's logit scale and, for SigLIP-style models, its logit bias) and is keyed by
what it is made of:

* the model: the space's `model_ref` and `weights_sha256`;
* the templates, in order;
* the vocabulary version: the prompt names, in order (a zero-shot version freezes them).

Any change to one of those is another key, so a stale matrix is never read; an unchanged key
is reused by every later job. `text_matrix_get` is the one writer: it builds under the space's
file lock (a second worker on the host waits and then reads what the first wrote), writes to a
temporary file and publishes it with an atomic rename, and keeps the newest KEEP files of a
space.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.taggers import conf
from apps.taggers.models import EmbeddingSpace

KEEP = 16


@dataclass(frozen=True)
class TextMatrix:
    matrix: np.ndarray  # D×T float32, one column per prompt name
    logit_scale: float  # exp(logit_scale) of the model
    logit_bias: float | None  # SigLIP-style models only
    key: str
    built: bool  # False when it was read from the store

    @property
    def sigmoid(self) -> bool:
        return self.logit_bias is not None

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """sigmoid(scale·cos + bias) of N×D vectors (SigLIP-style models only)."""
        if self.logit_bias is None:
            raise ValueError("the model has no logit bias")
        logits = (vectors @ self.matrix) * self.logit_scale + self.logit_bias
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)


def text_matrix_key(space: EmbeddingSpace, names: Sequence[str], templates: Sequence[str]) -> str:
    body = {
        "model_ref": space.model_ref,
        "weights_sha256": space.weights_sha256,
        "templates": list(templates),
        "names": list(names),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def store_dir(space_id: int) -> Path:
    return conf.cache_dir("text") / str(int(space_id))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path, key: str) -> TextMatrix | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            matrix = np.asarray(data["matrix"], dtype=np.float32)
            scale, bias, has_bias = (float(v) for v in data["logits"])
    except (OSError, KeyError, ValueError):
        return None  # absent or unreadable: built again
    return TextMatrix(matrix, scale, bias if has_bias else None, key, built=False)


def _prune(directory: Path) -> None:
    files = sorted(directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()


def text_matrix_get(space: EmbeddingSpace, names: Sequence[str], templates: Sequence[str]) -> TextMatrix:
    """The stored matrix of (model, templates, prompt names), built by the space's text tower
    and stored first when there is none."""
    key = text_matrix_key(space, names, templates)
    directory = store_dir(space.pk)
    path = directory / f"{key}.npz"
    found = _read(path, key) if path.is_file() else None
    if found is not None:
        return found
    with _locked(directory):
        found = _read(path, key) if path.is_file() else None  # another worker built it meanwhile
        if found is not None:
            return found
        from apps.taggers.services.embeddings import backend_for

        backend = backend_for(space)
        matrix = backend.text_matrix(list(names), list(templates))
        scale, bias = backend.logit_params()
        logits = np.asarray([scale, bias or 0.0, 1.0 if bias is not None else 0.0], dtype=np.float64)
        temp = directory / f".{key}.{uuid.uuid4().hex}.npz"
        with open(temp, "wb") as handle:
            np.savez(handle, matrix=matrix, logits=logits)
        os.replace(temp, path)
        _prune(directory)
    return TextMatrix(matrix, scale, bias, key, built=True)
