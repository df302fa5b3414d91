"""The item serializer's fast path gives exactly DRF's own output, field for field."""

from __future__ import annotations

import json

import pytest
from rest_framework import serializers

from apps.media.api.serializers import MediaItemOutputSerializer, MediaUploadOutputSerializer
from apps.media.models import MediaItem
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


def _drf(serializer_class: type, item: MediaItem) -> dict:
    return serializers.ModelSerializer.to_representation(serializer_class(), item)


def test_fast_output_equals_drfs_for_pictures_frames_and_derived_items():
    plain = make_item(seed=1)
    parent = make_item(seed=2, name="ünïcode ☃ name", source="https://example.com/p", artist="someone")
    derived = make_item(seed=3)
    MediaItem.objects.filter(pk=derived.pk).update(
        parent=parent, recipe={"ops": [{"op": "scale", "long": 64}], "output": {"format": "png"}}, rating="s"
    )
    frame = make_item(seed=4)
    MediaItem.objects.filter(pk=frame.pk).update(
        kind="frame",
        video=parent,
        timestamp_ms=1520,
        frame_index=38,
        box_x=4,
        box_y=2,
        box_w=20,
        box_h=16,
        focus=[0.1, 0.2, 0.75, 0.9],
        duration_ms=None,
    )
    items = list(MediaItem.objects.filter(pk__in=[plain.pk, parent.pk, derived.pk, frame.pk]).order_by("pk"))
    assert items[2].parent_id == parent.pk
    assert items[3].video_id == parent.pk
    for item in items:
        fast = MediaItemOutputSerializer(item).data
        assert json.dumps(fast, sort_keys=True) == json.dumps(
            _drf(MediaItemOutputSerializer, item), sort_keys=True
        )
        assert list(fast) == list(_drf(MediaItemOutputSerializer, item))  # the same key order
    many = MediaItemOutputSerializer(items, many=True).data
    assert [dict(row) for row in many] == [_drf(MediaItemOutputSerializer, item) for item in items]
    item = items[0]
    item.duplicate = True
    assert MediaUploadOutputSerializer(item).data == _drf(MediaUploadOutputSerializer, item)
    assert MediaUploadOutputSerializer(item).data["duplicate"] is True
