"""items.jsonl carries each image's full lineage (issue 15, docs/export-bundle.md#itemsjsonl):
source URL and artist, parent and recipe for derived items, video, frame, timestamp and box for
frames. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.media.models import MediaItem
from apps.training.services import exports
from tests.training import factories as f

pytestmark = pytest.mark.django_db


def test_items_jsonl_holds_source_artist_parent_recipe_and_video() -> None:
    original, derived, frame = f.items([["mychar", "smile"], ["mychar", "snow"], ["mychar", "sky"]])
    MediaItem.objects.filter(pk=original.pk).update(source="https://example.org/post/1", artist="anon")
    recipe = {"op": "crop", "box": [0, 0, 32, 24]}
    MediaItem.objects.filter(pk=derived.pk).update(parent=original, recipe=recipe, recipe_hash="ab" * 32)
    MediaItem.objects.filter(pk=frame.pk).update(
        kind="frame", video=original, frame_index=12, timestamp_ms=480, box_x=1, box_y=2, box_w=30, box_h=20
    )
    session = f.session([f.dataset("Mychar", [original, derived, frame])], targets=["kohya"])
    export = exports.export_sync(session=session)
    rows = {
        row["source"]["media_id"]: row["source"]
        for row in map(json.loads, (Path(export.bundle_path) / "items.jsonl").read_text().splitlines())
    }
    assert list(rows[original.pk]) == [
        "media_id",
        "original_name",
        "transform",
        "video",
        "url",
        "artist",
        "parent_media_id",
        "recipe",
    ]
    assert (rows[original.pk]["url"], rows[original.pk]["artist"]) == ("https://example.org/post/1", "anon")
    assert rows[original.pk]["parent_media_id"] is None
    assert rows[original.pk]["recipe"] is None
    assert rows[derived.pk]["parent_media_id"] == original.pk
    assert rows[derived.pk]["recipe"] == recipe
    assert rows[derived.pk]["transform"][0] == "recipe:" + "ab" * 6
    assert rows[frame.pk]["video"] == {
        "video_media_id": original.pk,
        "frame": 12,
        "timestamp_ms": 480,
        "box": [1, 2, 30, 20],
    }
    assert (rows[frame.pk]["url"], rows[frame.pk]["artist"]) == ("", "")
