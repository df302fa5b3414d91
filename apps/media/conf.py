"""Media settings (upload, archive, URL and ffmpeg limits, thumbnails), read lazily; see apps/core/conf.py."""

from __future__ import annotations

from typing import Any

from apps.core.conf import setting_float, setting_int, setting_list

DEFAULTS: dict[str, Any] = {
    "BAGGINTAG_MAX_UPLOAD_BYTES": 512 * 1024 * 1024,
    "BAGGINTAG_MAX_IMAGE_PIXELS": 100_000_000,
    "BAGGINTAG_MAX_ANIMATION_PIXELS": 2_000_000_000,
    "BAGGINTAG_MAX_ARCHIVE_MEMBERS": 10_000,
    "BAGGINTAG_MAX_ARCHIVE_BYTES": 8 * 1024**3,
    "BAGGINTAG_MAX_ARCHIVE_RATIO": 100,
    "BAGGINTAG_MAX_BULK_FILES": 1_000,
    "BAGGINTAG_MAX_BULK_URLS": 10_000,
    "BAGGINTAG_URL_TIMEOUT": 30.0,
    "BAGGINTAG_URL_MAX_REDIRECTS": 5,
    "BAGGINTAG_URL_ALLOWED_NETWORKS": [],
    "BAGGINTAG_FFMPEG_TIMEOUT": 60.0,
    "BAGGINTAG_THUMBNAIL_SIZE": 256,
    "BAGGINTAG_INGEST_THREADS": 0,
}


def max_upload_bytes() -> int:
    """Largest upload or URL download, in bytes."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_UPLOAD_BYTES")


def max_image_pixels() -> int:
    """Largest image (width × height) decoded; more is refused as a decompression bomb."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_IMAGE_PIXELS")


def max_animation_pixels() -> int:
    """Largest animated GIF/WebP (frames × width × height) decoded: probing reads every frame."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_ANIMATION_PIXELS")


def max_archive_members() -> int:
    """Most members a zip may hold."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_ARCHIVE_MEMBERS")


def max_archive_bytes() -> int:
    """Most bytes a zip may expand to."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_ARCHIVE_BYTES")


def max_archive_ratio() -> int:
    """Highest compression ratio of a zip member before it counts as a bomb."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_ARCHIVE_RATIO")


def max_bulk_files() -> int:
    """Most files in one bulk upload request."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_BULK_FILES")


def max_bulk_urls() -> int:
    """Most URLs (or items) in one bulk upload request."""
    return setting_int(DEFAULTS, "BAGGINTAG_MAX_BULK_URLS")


def url_timeout() -> float:
    """Seconds one URL download may take, redirects included."""
    return setting_float(DEFAULTS, "BAGGINTAG_URL_TIMEOUT")


def url_max_redirects() -> int:
    """Most redirects one URL download follows."""
    return setting_int(DEFAULTS, "BAGGINTAG_URL_MAX_REDIRECTS")


def url_allowed_networks() -> list[str]:
    """CIDRs exempt from the private-address block for URL downloads."""
    return setting_list(DEFAULTS, "BAGGINTAG_URL_ALLOWED_NETWORKS")


def ffmpeg_timeout() -> float:
    """Seconds ffmpeg may go without progress before it is stopped."""
    return setting_float(DEFAULTS, "BAGGINTAG_FFMPEG_TIMEOUT")


def thumbnail_size() -> int:
    """Longest side of a thumbnail, in pixels."""
    return setting_int(DEFAULTS, "BAGGINTAG_THUMBNAIL_SIZE")


def ingest_threads() -> int:
    """Threads a bulk upload job ingests with, and bulk transforms and conform render with; 0 (the
    default): one per CPU the worker may use."""
    return setting_int(DEFAULTS, "BAGGINTAG_INGEST_THREADS")
