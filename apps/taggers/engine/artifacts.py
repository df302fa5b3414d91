"""Head artifacts on disk and scoring with them (docs/taggers.md#artifacts).

A version's directory holds ``head.safetensors``, ``thresholds.json``, ``vocab.json``,
``labels.npz``, ``metrics.json`` and ``MANIFEST.json`` (sha256 per file). The version's
``artifact_sha256`` is the sha256 of ``MANIFEST.json``; loading checks both levels.

Scoring is numpy (scipy's erf for the MLP's GELU), the same function training used to pick the
thresholds, so stored scores and thresholds agree exactly. No Django, no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from apps.taggers.engine.train import TrainOutput

ARTIFACT_FORMAT = "baggintag-head/1"
HEAD_FILES = ("head.safetensors", "thresholds.json", "vocab.json", "labels.npz", "metrics.json")
MANIFEST = "MANIFEST.json"


class ArtifactIntegrityError(Exception):
    """An artifact file is missing or its sha256 differs from the manifest or the version."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=np.float32)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _gelu(z: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return (0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))).astype(np.float32)


def head_forward(tensors: dict[str, np.ndarray], x: np.ndarray, network: str) -> np.ndarray:
    """Probabilities of the shared head's tags for rows ``x`` (float32)."""
    x = x.astype(np.float32, copy=False)
    if network == "linear":
        return sigmoid(x @ tensors["head.0.weight"].T + tensors["head.0.bias"])
    hidden = _gelu(x @ tensors["head.0.weight"].T + tensors["head.0.bias"])
    return sigmoid(hidden @ tensors["head.3.weight"].T + tensors["head.3.bias"])


def labels_sha256(item_ids: np.ndarray, keys: Sequence[int], labels: np.ndarray) -> str:
    """Hash of a frozen label set: item ids, tag keys and the −1/0/1 matrix."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(item_ids, dtype="<i8").tobytes())
    digest.update(np.asarray(list(keys), dtype="<i8").tobytes())
    digest.update(np.asarray(labels.shape, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int8).tobytes())
    return digest.hexdigest()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifacts_write(
    output: TrainOutput,
    directory: Path,
    *,
    item_ids: np.ndarray,
    labels: np.ndarray,
    space: dict[str, Any],
    library_versions: dict[str, str],
) -> str:
    """Write every file of a version into ``directory``; returns the artifact sha256."""
    from safetensors.numpy import save

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {**output.vocab, "space": space}
    # One metadata key only: safetensors keeps metadata in a hash map, so the order of several
    # keys (and the file's bytes) would change from run to run.
    metadata = {"format": ARTIFACT_FORMAT}
    tensors = {k: np.ascontiguousarray(v) for k, v in output.tensors.items()}
    (directory / "head.safetensors").write_bytes(save(tensors, metadata=metadata))
    (directory / "thresholds.json").write_bytes(_json_bytes(output.thresholds))
    (directory / "vocab.json").write_bytes(_json_bytes(vocab))
    (directory / "metrics.json").write_bytes(_json_bytes(output.metrics))
    with (directory / "labels.npz").open("wb") as fh:
        np.savez_compressed(fh, item_ids=np.asarray(item_ids, dtype=np.int64), labels=labels.astype(np.int8))
    manifest = {
        "format": ARTIFACT_FORMAT,
        "files": {name: _sha256_file(directory / name) for name in HEAD_FILES},
        "library_versions": library_versions,
    }
    data = _json_bytes(manifest)
    (directory / MANIFEST).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def artifacts_verify(directory: Path, expected_sha256: str) -> dict[str, Any]:
    """Check the manifest against the version and every file against the manifest."""
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactIntegrityError(f"{MANIFEST} is missing from {directory}.")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ArtifactIntegrityError(f"{MANIFEST} in {directory} does not match the version's sha256.")
    manifest: dict[str, Any] = json.loads(data)
    for name, sha in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise ArtifactIntegrityError(f"{name} is missing from {directory}.")
        if _sha256_file(file) != sha:
            raise ArtifactIntegrityError(
                f"{name} in {directory} was changed after training (sha256 differs)."
            )
    return manifest


@dataclass
class Head:
    """A loaded head: scores every trainable tag of its vocabulary, in ``keys`` order."""

    network: str
    keys: list[int]
    tensors: dict[str, np.ndarray]
    head_rows: list[int]  # position in ``keys`` of each head row
    lr_rows: list[int]
    thresholds: dict[str, dict[str, Any]]
    space: dict[str, Any]

    @property
    def dim(self) -> int:
        weight = self.tensors.get("head.0.weight", self.tensors.get("lr.weight"))
        assert weight is not None
        return int(weight.shape[1])

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probabilities, rows × ``keys``."""
        out = np.zeros((x.shape[0], len(self.keys)), dtype=np.float32)
        if self.head_rows:
            out[:, self.head_rows] = head_forward(self.tensors, x, self.network)
        if self.lr_rows:
            out[:, self.lr_rows] = sigmoid(
                x.astype(np.float32) @ self.tensors["lr.weight"].T + self.tensors["lr.bias"]
            )
        return out


def head_from_tensors(
    tensors: dict[str, np.ndarray], vocab: dict[str, Any], thresholds: dict[str, Any]
) -> Head:
    scorable = [t for t in vocab["tags"] if t["block"] is not None]
    keys = [int(t["key"]) for t in scorable]
    head_pos = sorted((t["row"], i) for i, t in enumerate(scorable) if t["block"] == "head")
    lr_pos = sorted((t["row"], i) for i, t in enumerate(scorable) if t["block"] == "lr")
    return Head(
        network=str(vocab["network"]),
        keys=keys,
        tensors=tensors,
        head_rows=[i for _, i in head_pos],
        lr_rows=[i for _, i in lr_pos],
        thresholds=thresholds,
        space=dict(vocab.get("space") or {}),
    )


def head_load(directory: Path, expected_sha256: str) -> Head:
    """Load a verified head directory (raises ``ArtifactIntegrityError`` when tampered with)."""
    from safetensors.numpy import load_file

    artifacts_verify(directory, expected_sha256)
    vocab = json.loads((directory / "vocab.json").read_text())
    thresholds = json.loads((directory / "thresholds.json").read_text())
    return head_from_tensors(load_file(str(directory / "head.safetensors")), vocab, thresholds)
