"""Tag settings (template CSV imports, bulk operations), read lazily; see apps/core/conf.py.

The search limits (SEARCH_*) live in apps/search/query/config.py.
"""

from __future__ import annotations

from typing import Any

from apps.core.conf import setting_int

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_VOCAB_IMPORT_MAX_BYTES": 32 * 1024 * 1024,
    "BAGGINTAG_VOCAB_IMPORT_MAX_LINES": 500_000,
    # Bulk tag operations (docs/tags.md#bulk-operations).
    "BULK_SYNC_MAX_CHANGES": 10_000,
    "BULK_CHUNK_ITEMS": 5_000,
    "BULK_MAX_TARGET": 100_000,
    "BULK_PREVIEW_TTL_HOURS": 24,
    "BULK_OPERATION_RETENTION_DAYS": 90,
}


def vocab_import_max_bytes() -> int:
    """Largest template CSV import, in bytes."""
    return setting_int(DEFAULTS, "BAGGINTAG_VOCAB_IMPORT_MAX_BYTES")


def vocab_import_max_lines() -> int:
    """Most lines in a template CSV import."""
    return setting_int(DEFAULTS, "BAGGINTAG_VOCAB_IMPORT_MAX_LINES")


def bulk_sync_max_changes() -> int:
    """Bulk operations changing at most this many assignments apply in the request; more run as a job."""
    return setting_int(DEFAULTS, "BULK_SYNC_MAX_CHANGES")


def bulk_chunk_items() -> int:
    """Items per chunk (one transaction) of a bulk operation run as a job."""
    return setting_int(DEFAULTS, "BULK_CHUNK_ITEMS")


def bulk_max_target() -> int:
    """Most items one bulk operation may target."""
    return setting_int(DEFAULTS, "BULK_MAX_TARGET")


def bulk_preview_ttl_hours() -> int:
    """Hours an unapplied bulk preview is kept."""
    return setting_int(DEFAULTS, "BULK_PREVIEW_TTL_HOURS")


def bulk_operation_retention_days() -> int:
    """Days an applied bulk operation (and its undo log) is kept."""
    return setting_int(DEFAULTS, "BULK_OPERATION_RETENTION_DAYS")
