"""Datasets settings, read lazily; see apps/core/conf.py."""

from __future__ import annotations

from typing import Any

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_DATASET_STATS_SAMPLE": 5_000,
}


def stats_sample() -> int:
    """Above this many members, a dataset's tag figures are estimated from a systematic sample
    of this many (docs/datasets.md#statistics)."""
    return max(1, setting_int(DEFAULTS, "BAGGINTAG_DATASET_STATS_SAMPLE"))
