"""Taggers settings, read lazily; see apps/core/conf.py (docs/taggers.md#settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.conf import setting_float, setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_ML_BATCH": 128,
    "BAGGINTAG_ML_DECODE_WORKERS": 0,
    "BAGGINTAG_TRAIN_THREADS": 0,
    "BAGGINTAG_CPU_JOB_LIMIT_S": 7200,
    "BAGGINTAG_SIMILAR_TOP_K": 200,
    "BAGGINTAG_TEXT_QUERY_WAIT_S": 5.0,
    "BAGGINTAG_RETRAIN_AFTER_CHANGES": 50,
    "BAGGINTAG_RETRAIN_DELAY_S": 300,
}


def model_dir() -> Path:
    """Where provisioned weights live (read-only on workers)."""
    return Path(settings.BAGGINTAG_MODEL_DIR)


def cache_dir(kind: str) -> Path:
    """This host's cache folder of one kind (`emb`, `heads`) under the data folder."""
    return Path(settings.DATA_DIR) / "cache" / kind


def ml_batch() -> int:
    """Items per embed batch, kept within 1–1024."""
    return max(1, min(setting_int(DEFAULTS, "BAGGINTAG_ML_BATCH"), 1024))


def decode_workers() -> int:
    """Decode threads per embed job; 0: one per core."""
    return setting_int(DEFAULTS, "BAGGINTAG_ML_DECODE_WORKERS")


def train_threads() -> int | None:
    """torch threads for head training; None (setting 0): torch's default, one per core. On a
    host shared with other busy processes 1 avoids OpenMP threads spinning against them."""
    return max(0, setting_int(DEFAULTS, "BAGGINTAG_TRAIN_THREADS")) or None


def cpu_job_limit_s() -> int:
    """The longest estimated `ml` job a CUDA-less host accepts."""
    return setting_int(DEFAULTS, "BAGGINTAG_CPU_JOB_LIMIT_S")


def similar_top_k() -> int:
    """Items a ranked term returns by default."""
    return setting_int(DEFAULTS, "BAGGINTAG_SIMILAR_TOP_K")


def text_query_wait_s() -> float:
    """How long a search waits for a worker to encode a new text."""
    return setting_float(DEFAULTS, "BAGGINTAG_TEXT_QUERY_WAIT_S")


def retrain_after_changes() -> int:
    """Curated label changes on a head tagger's tags that queue a retrain; 0 turns it off."""
    return max(0, setting_int(DEFAULTS, "BAGGINTAG_RETRAIN_AFTER_CHANGES"))


def retrain_delay_s() -> int:
    """Seconds between reaching that count and queueing the training (more edits join it)."""
    return max(0, setting_int(DEFAULTS, "BAGGINTAG_RETRAIN_DELAY_S"))
