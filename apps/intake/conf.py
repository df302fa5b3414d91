"""Intake settings, read lazily; see apps/core/conf.py."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_INTAKE_FOLDER_ROOT": "",
    "BAGGINTAG_INTAKE_QUERY_MAX": 10_000,
}


def folder_root() -> str:
    """The server folder that intake entries may read from; empty: folder entries are off."""
    return str(
        getattr(settings, "BAGGINTAG_INTAKE_FOLDER_ROOT", DEFAULTS["BAGGINTAG_INTAKE_FOLDER_ROOT"]) or ""
    )


def query_max() -> int:
    """Most library items one query entry adds (a saved query on the dataset is for more)."""
    return setting_int(DEFAULTS, "BAGGINTAG_INTAKE_QUERY_MAX")
