"""Provisioning models under BAGGINTAG_MODEL_DIR and checking them (docs/taggers.md#provisioning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.taggers import conf
from apps.taggers.engine import provision


def model_root() -> Path:
    return conf.model_dir()


def models_provision(
    *,
    kind: str,
    repo: str,
    name: str,
    revision: str = "",
    from_dir: str = "",
    licence: str = "",
    extras: dict[str, Any] | None = None,
    replace: bool = False,
) -> provision.Provisioned:
    """Copy a model (from a mirrored directory, or downloaded on a connected host) into the
    model directory with its MANIFEST.json."""
    return provision.provision(
        model_root=model_root(),
        kind=kind,
        repo=repo,
        name=name,
        revision=revision,
        from_dir=Path(from_dir) if from_dir else None,
        licence=licence,
        extras=extras,
        replace=replace,
    )


def models_verify(*, kind: str | None = None, name: str | None = None) -> list[provision.Verified]:
    """Check every provisioned file against its manifest's sha256."""
    return provision.verify_all(model_root(), kind=kind, name=name)
