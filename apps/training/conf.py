"""Training settings, read lazily; see apps/core/conf.py (docs/training.md#settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_TRAINING_FOLDER_ROOT": "",
    "BAGGINTAG_TRAINING_PLAN_CHUNK": 1000,
    "BAGGINTAG_TRAINING_SYNC_LINT_MAX": 2000,
    "BAGGINTAG_TRAINING_FINDINGS_MAX": 500,
}


def export_dir() -> Path:
    """Where finished bundles live (`BAGGINTAG_TRAINING_EXPORT_DIR`, default `$DATA_DIR/exports`)."""
    return Path(str(getattr(settings, "BAGGINTAG_TRAINING_EXPORT_DIR", "") or f"{settings.DATA_DIR}/exports"))


def folder_root() -> str:
    """The only server folder bundles may be exported into (empty: folder exports are off)."""
    return str(
        getattr(settings, "BAGGINTAG_TRAINING_FOLDER_ROOT", DEFAULTS["BAGGINTAG_TRAINING_FOLDER_ROOT"])
    )


def plan_chunk() -> int:
    """Snapshot items read per step while planning an export (keyset chunks)."""
    return max(1, min(setting_int(DEFAULTS, "BAGGINTAG_TRAINING_PLAN_CHUNK"), 10_000))


def sync_lint_max() -> int:
    """Sessions with more items than this are linted as a job, not in the request."""
    return setting_int(DEFAULTS, "BAGGINTAG_TRAINING_SYNC_LINT_MAX")


def findings_max() -> int:
    """Findings an export or a lint keeps (the rest are counted)."""
    return setting_int(DEFAULTS, "BAGGINTAG_TRAINING_FINDINGS_MAX")


def app_version() -> str:
    """The app version bundles record (the API's version)."""
    return str(getattr(settings, "SPECTACULAR_SETTINGS", {}).get("VERSION", "0.1.0"))
