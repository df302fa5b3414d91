"""Media services: ingest, bulk upload, deletion (modules split by concern)."""

from apps.media.services.bulk import media_upload_bulk_run, media_upload_bulk_start
from apps.media.services.ingest import IngestResult, Metadata, Origin, media_ingest, metadata_clean
from apps.media.services.items import (
    focus_clean,
    media_item_delete,
    media_item_set_focus,
    media_item_update_metadata,
    media_items_delete,
)

__all__ = [
    "IngestResult",
    "Metadata",
    "Origin",
    "focus_clean",
    "media_ingest",
    "media_item_delete",
    "media_item_set_focus",
    "media_item_update_metadata",
    "media_items_delete",
    "media_upload_bulk_run",
    "media_upload_bulk_start",
    "metadata_clean",
]
