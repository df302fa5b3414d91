"""Job settings, read lazily; see apps/core/conf.py."""

from __future__ import annotations

from typing import Any

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_JOB_STALE_SECONDS": 900,
}


def job_stale_seconds() -> int:
    """A running job whose heartbeat is older than this is re-queued by the sweeper."""
    return setting_int(DEFAULTS, "BAGGINTAG_JOB_STALE_SECONDS")
