"""Reads that tag tests compare: curated names, effective tags, a whole-library snapshot that an
undo must restore, and the drift check (stored counters equal a recount)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from apps.media.models import MediaItem
from apps.tags.models import EffectiveTag, Tag, TagAssignment, TagSet, TagStat
from apps.tags.services.effective import counters_recount, effective_rebuild_all
from tests.tags.factories import stats_rebuild


def curated_names(item: MediaItem, *, state: int = TagAssignment.State.CURRENT) -> list[str]:
    """The item's curated tag names in that state, in the set's order."""
    return list(
        TagAssignment.objects.filter(media_item=item, kind=TagSet.Kind.CURATED, state=state)
        .order_by("position", "tag__name")
        .values_list("tag__name", flat=True)
    )


def effective_names(item: MediaItem) -> set[str]:
    return set(EffectiveTag.objects.filter(media_item=item).values_list("tag__name", flat=True))


def snapshot() -> dict[str, Any]:
    """Everything an undo must restore, keyed so that re-created sets compare equal."""
    sets = {s.pk: (s.media_item_id, s.kind, s.slot) for s in TagSet.objects.all()}
    return {
        "assignments": sorted(
            (sets[a[0]], *a[1:])
            for a in TagAssignment.objects.values_list(
                "tagset_id", "tag_id", "media_item_id", "kind", "state", "position", "added_via", "confidence"
            )
        ),
        "sets": sorted(
            (*key, n) for key, n in ((sets[s.pk], s.assignment_count) for s in TagSet.objects.all())
        ),
        "effective": sorted(EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied")),
        "stats": sorted(
            TagStat.objects.exclude(current_count=0).values_list("tag_id", "set_kind", "current_count")
        ),
        "media_count": sorted(Tag.objects.exclude(media_count=0).values_list("pk", "media_count")),
        "tag_count": sorted(MediaItem.objects.values_list("pk", "tag_count")),
    }


def comparable(counts: dict[str, Any]) -> dict[str, Any]:
    """The part of a preview's counts that the applied operation's counters must repeat."""
    keys = ("matched_items", "items_changing", "sets_created", "seeded", "changes", "tags")
    return {k: counts.get(k) for k in keys}


def assert_no_drift() -> None:
    """Stored counters equal a recount, and effective tags equal a full rebuild."""
    stats = sorted(
        TagStat.objects.exclude(current_count=0).values_list("tag_id", "set_kind", "current_count")
    )
    effective = sorted(EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied"))
    counts = sorted(Tag.objects.values_list("pk", "media_count"))
    actual = dict(
        TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
        .values_list("tagset_id")
        .annotate(n=Count("*"))
        .values_list("tagset_id", "n")
    )
    stored = dict(TagSet.objects.values_list("pk", "assignment_count"))
    assert {pk: n for pk, n in stored.items() if n} == {
        pk: actual.get(pk, 0) for pk, n in stored.items() if n
    }
    assert all(stored.get(pk) == n for pk, n in actual.items())
    stats_rebuild()
    assert (
        sorted(TagStat.objects.exclude(current_count=0).values_list("tag_id", "set_kind", "current_count"))
        == stats
    )
    effective_rebuild_all()
    assert counters_recount() == {"tags_fixed": 0}
    assert sorted(EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied")) == effective
    assert sorted(Tag.objects.values_list("pk", "media_count")) == counts
