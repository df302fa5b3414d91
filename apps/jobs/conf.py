"""Job settings, read lazily; see apps/core/conf.py."""

from __future__ import annotations

from typing import Any

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_JOB_STALE_SECONDS": 60,
    "BAGGINTAG_JOB_HEARTBEAT_SECONDS": 10,
    "BAGGINTAG_JOB_SEND_GRACE_SECONDS": 30,
    "BAGGINTAG_JOB_MAX_ATTEMPTS": 5,
    "BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS": 72,
}


def job_stale_seconds() -> int:
    """A running job whose heartbeat is older than this is taken over: by a delivery of its
    message, or by the sweeper, which re-queues it."""
    return setting_int(DEFAULTS, "BAGGINTAG_JOB_STALE_SECONDS")


def job_heartbeat_seconds() -> int:
    """How often a running attempt refreshes its heartbeat (well below the stale time)."""
    return max(1, setting_int(DEFAULTS, "BAGGINTAG_JOB_HEARTBEAT_SECONDS"))


def job_send_grace_seconds() -> int:
    """A queued job whose message was sent longer ago than this, and which the broker no longer
    holds, is sent again by the sweeper; an unsent one too."""
    return setting_int(DEFAULTS, "BAGGINTAG_JOB_SEND_GRACE_SECONDS")


def job_max_attempts() -> int:
    """A job claimed this many times without finishing (its worker keeps dying) fails."""
    return setting_int(DEFAULTS, "BAGGINTAG_JOB_MAX_ATTEMPTS")


def job_keep_failed_files_hours() -> int:
    """Staged inputs of a failed job are kept this long, so a retry can resume; then swept."""
    return setting_int(DEFAULTS, "BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS")
