"""Provisional engine base (the taggers helper owns the real one; reconciled on merge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.core.exceptions import ConflictError, DomainError


class ModelNotProvisioned(ConflictError):
    default_code = "taggers.model_not_provisioned"


class ModelIntegrityError(DomainError):
    default_code = "taggers.model_integrity"


class UnsupportedLabelFormat(DomainError):
    default_code = "taggers.unsupported_label_format"


@dataclass
class Output:
    scores: dict[int, float] | None = None
    score_kind: str = "probability"
    embedding: Any = None
    text: str | None = None
    regions: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
