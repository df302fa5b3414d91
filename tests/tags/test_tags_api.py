"""API: tag types, tag templates (import, export, build) and tags (list, edit, autocomplete)."""

from __future__ import annotations

import io

import pytest

from apps.media.models import MediaItem
from apps.media.services import Origin, media_ingest, metadata_clean
from tests import mediafiles

pytestmark = pytest.mark.django_db


def make_item(seed: int = 0, tags: list[str] | None = None) -> MediaItem:
    meta = metadata_clean(tags=tags, tag_source="import") if tags else metadata_clean()
    return media_ingest(
        stream=io.BytesIO(mediafiles.image_bytes("png", size=(16, 16), seed=seed)),
        origin=Origin(kind="upload"),
        metadata=meta,
    ).item
