"""Inheritance into derived sets: the batch writer (`tag_sets_inherit`, one read and one write for
many targets, used by frame capture and bulk transforms) gives each target what
`tag_set_inherit` gives one."""

from __future__ import annotations

import pytest

from apps.tags import slots
from apps.tags.models import EffectiveTag, TagAssignment, TagSet
from apps.tags.services import tag_set_curated_add, tag_set_inherit, tag_sets_inherit
from apps.tags.services.tagsets import tag_set_add_to_item
from tests.tags.factories import items_make, make_item
from tests.tags.snapshots import assert_no_drift

pytestmark = pytest.mark.django_db


def inherited(item) -> list[tuple]:
    """The item's derived rows, as inherited: name, position, via, where from, as entered."""
    return list(
        TagAssignment.objects.filter(media_item=item, kind=TagSet.Kind.DERIVED)
        .order_by("position")
        .values_list("tag__name", "position", "state", "added_via", "origin_set_id", "entered_tag")
    )


def test_batch_inherit_equals_one_at_a_time_from_source_sets():
    video = make_item(["outdoors", "Sky", "anime"], tag_source="fansite")
    tag_set_add_to_item(media_item=video, kind="source", names=["sky", "night"], tag_source="booru")
    one, *many = items_make(3, kind="frame")
    slot = slots.derived(relation="video", item_id=video.pk)
    tag_set_inherit(target=one, source=video, slot=slot)
    assert set(tag_sets_inherit(pairs=[(t, video, slot) for t in many])) == {t.pk for t in many}
    expected = inherited(one)
    assert [row[0] for row in expected] == ["outdoors", "sky", "anime", "night"]  # union, first set first
    for target in many:
        assert inherited(target) == expected
        assert set(EffectiveTag.objects.filter(media_item=target).values_list("tag__name", flat=True)) == {
            "outdoors",
            "sky",
            "anime",
            "night",
        }
    assert_no_drift()
    # Idempotent: a second batch (or a repeated frame in it) creates and writes nothing.
    rows = sorted(TagAssignment.objects.filter(kind=TagSet.Kind.DERIVED).values_list("pk", flat=True))
    tag_sets_inherit(pairs=[(t, video, slot) for t in [*many, many[0], one]])
    assert TagSet.objects.filter(kind=TagSet.Kind.DERIVED, slot=slot).count() == 3
    assert sorted(TagAssignment.objects.filter(kind=TagSet.Kind.DERIVED).values_list("pk", flat=True)) == rows


def test_batch_inherit_takes_the_curated_set_when_there_is_one():
    video = make_item(["outdoors", "anime"], tag_source="fansite")
    tag_set_curated_add(media_item=video, names=["sky"])
    one, other = items_make(2, kind="frame")
    slot = slots.derived(relation="video", item_id=video.pk)
    tag_set_inherit(target=one, source=video, slot=slot)
    tag_sets_inherit(pairs=[(other, video, slot)])
    assert inherited(other) == inherited(one)
    curated = TagSet.objects.get(media_item=video, kind=TagSet.Kind.CURATED)
    assert {row[4] for row in inherited(other)} == {curated.pk}
    assert_no_drift()


def test_batch_inherit_from_an_untagged_item_creates_no_sets():
    video = make_item(seed=3)
    targets = items_make(2, kind="frame")
    slot = slots.derived(relation="video", item_id=video.pk)
    assert tag_sets_inherit(pairs=[(t, video, slot) for t in targets]) == {}
    assert not TagSet.objects.filter(kind=TagSet.Kind.DERIVED).exists()
