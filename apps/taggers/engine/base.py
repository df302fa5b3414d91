"""The backend interface and the engine's errors (docs/taggers.md#engine).

Light on purpose: importing this module loads no ML package (numpy only for type checking), so
services and models may use its errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from apps.core.exceptions import ConflictError, DomainError, UnprocessableError

if TYPE_CHECKING:
    import numpy as np


class ModelNotProvisioned(ConflictError):
    """The weights a backend needs are not under BAGGINTAG_MODEL_DIR (message names the model,
    kind, directory, missing files and the `models provision` command)."""

    default_code = "taggers.model_not_provisioned"
    default_message = "The model's files are not provisioned on this host."


class ModelIntegrityError(ConflictError):
    """A provisioned or artifact file's sha256 differs from its manifest."""

    default_code = "taggers.model_integrity"
    default_message = "A model file does not match its manifest's sha256."


class EmbeddingSpaceMismatch(ConflictError):
    """Weights, a head, a text matrix or a vector do not belong to the space they are used with."""

    default_code = "taggers.space_mismatch"
    default_message = "The model does not belong to this embedding space."


class UnsupportedLabelFormat(UnprocessableError):
    """A tagger's label file is not in a supported format."""

    default_code = "taggers.unsupported_labels"
    default_message = "The model's label file is not in a supported format."


class VersionFrozen(ConflictError):
    """A ready tagger version is immutable except `status → retired`."""

    default_code = "taggers.version_frozen"
    default_message = "A ready tagger version cannot change; train a new version."


class InvalidModelRef(DomainError):
    """A model reference that would download or guess (pretrained tags, hf-hub:)."""

    default_code = "taggers.invalid_model_ref"
    default_message = "This model reference is not allowed."


@dataclass(frozen=True)
class RegionBox:
    """A detected box in fractions of the image (x0, y0, x1, y1 in [0, 1])."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    label: str


@dataclass
class Output:
    """What a backend returns for one input, in input order. `score_kind`: "probability" or
    "cosine" (stored as (cos+1)/2)."""

    scores: dict[int, float] | None = None
    score_kind: str = "probability"
    embedding: np.ndarray | None = None
    text: str | None = None
    regions: list[RegionBox] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend's model lives and what it must hash to."""

    kind: str
    model_ref: str
    expected_sha256: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One input: an item id and a local path to its pixels (or a stored vector)."""

    item_id: int
    path: str = ""
    vector: bytes | None = None


class Backend(Protocol):
    kind: ClassVar[str]
    needs: ClassVar[frozenset[str]]  # {"pixels"} or {"embedding"}

    def load(self, spec: BackendSpec, device: str) -> None:
        """Check the files (ModelNotProvisioned), then do the heavy imports."""

    def unload(self) -> None: ...

    def run(self, items: Sequence[Item], params: Mapping[str, Any]) -> list[Output]:
        """One output per item, in order; no database writes."""
        ...
