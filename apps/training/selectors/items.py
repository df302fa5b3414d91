"""Reads behind the export plan (docs/training.md#plan): a source's rows in keyset chunks and,
per chunk, everything its items need, each a set-based query for the whole chunk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.datasets.models import SnapshotItem
from apps.media.models import MediaItem, MediaSource
from apps.tags.models import Description, EffectiveTag, Tag, TagAssignment, TagSet


@dataclass(frozen=True)
class Source:
    """Where one dataset entry's items come from: a snapshot part, or live members."""

    snapshot_id: int | None = None
    part: int = 0
    members: QuerySet[MediaItem] | None = None

    def count(self) -> int:
        if self.snapshot_id is not None:
            return SnapshotItem.objects.filter(snapshot_id=self.snapshot_id, part=self.part).count()
        assert self.members is not None
        return self.members.order_by().count()

    def chunk(self, after: str, limit: int) -> list[tuple[int, str, int | None]]:
        """(item id, sha256, tags hash or None) with sha256 above `after`, in sha256 order: the
        bundle's ids are sha256 prefixes, so this is the bundle's order."""
        if self.snapshot_id is not None:
            rows = SnapshotItem.objects.filter(snapshot_id=self.snapshot_id, part=self.part, sha256__gt=after)
            return [
                (int(i), str(s), int(h))
                for i, s, h in rows.order_by("sha256").values_list("item_id", "sha256", "tags_hash")[:limit]
            ]
        assert self.members is not None
        live = self.members.filter(sha256__gt=after).order_by("sha256").values_list("pk", "sha256")[:limit]
        return [(int(i), str(s), None) for i, s in live]

    def item_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of `ids` are in this source (one query)."""
        if self.snapshot_id is not None:
            rows = SnapshotItem.objects.filter(snapshot_id=self.snapshot_id, part=self.part, item_id__in=ids)
            return set(rows.values_list("item_id", flat=True))
        assert self.members is not None
        return set(self.members.filter(pk__in=ids).values_list("pk", flat=True))


MEDIA_FIELDS = (
    "pk",
    "kind",
    "name",
    "sha256",
    "storage_key",
    "format",
    "width",
    "height",
    "mode",
    "has_alpha",
    "focus",
    "source",
    "artist",
    "parent_id",
    "recipe",
    "recipe_hash",
    "video_id",
    "timestamp_ms",
    "frame_index",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
)


@dataclass
class ChunkData:
    media: dict[int, dict[str, Any]]
    original_names: dict[int, str]
    effective: dict[int, list[int]]  # item → effective tag ids
    ranks: dict[tuple[int, int], float]  # (item, tag) → rank (curated position, else -confidence)
    descriptions: dict[int, dict[str, list[str]]]  # item → set name → texts


def chunk_load(item_ids: Sequence[int]) -> ChunkData:
    media = {row["pk"]: row for row in MediaItem.objects.filter(pk__in=item_ids).values(*MEDIA_FIELDS)}
    names: dict[int, str] = {}
    sources = MediaSource.objects.filter(media_item_id__in=item_ids).exclude(original_filename="")
    for item_id, name in sources.order_by("media_item_id", "pk").values_list(
        "media_item_id", "original_filename"
    ):
        names.setdefault(item_id, name)
    effective: dict[int, list[int]] = defaultdict(list)
    rows = EffectiveTag.objects.filter(media_item_id__in=item_ids).order_by()
    for item_id, tag_id in rows.values_list("media_item_id", "tag_id"):
        effective[item_id].append(tag_id)
    ranks: dict[tuple[int, int], float] = {}
    assignments = TagAssignment.objects.filter(media_item_id__in=item_ids, state=TagAssignment.State.CURRENT)
    for item_id, tag_id, kind, position, confidence in assignments.order_by().values_list(
        "media_item_id", "tag_id", "kind", "position", "confidence"
    ):
        key = (item_id, tag_id)
        if kind == TagSet.Kind.CURATED and position is not None:
            ranks[key] = float(position)  # a curated position wins over any confidence
        elif confidence is not None and (key not in ranks or ranks[key] < 0):
            ranks[key] = min(ranks.get(key, 0.0), -confidence / 10000)
    descriptions: dict[int, dict[str, list[str]]] = defaultdict(dict)
    described = Description.objects.filter(media_item_id__in=item_ids).order_by("media_item_id", "pk")
    for row in described.values_list("media_item_id", "kind", "label", "text"):
        owner, set_kind, label, text = int(row[0]), str(row[1]), str(row[2]), str(row[3])
        name = label if set_kind == Description.Kind.CUSTOM and label else set_kind
        descriptions[owner].setdefault(name, []).append(text)
    return ChunkData(media, names, dict(effective), ranks, dict(descriptions))


@dataclass(frozen=True)
class TagRow:
    name: str
    type_id: int
    vocabulary_id: int
    keep_underscore: bool


def tags_info(tag_ids: set[int], into: dict[int, TagRow]) -> dict[int, TagRow]:
    """Name, type and vocabulary of tags not yet in `into` (one query), cached across chunks."""
    missing = [t for t in tag_ids if t not in into]
    if missing:
        for pk, name, type_id, vocabulary_id, keep in Tag.objects.filter(pk__in=missing).values_list(
            "pk", "name", "type_id", "vocabulary_id", "keep_underscore"
        ):
            into[pk] = TagRow(name, type_id, vocabulary_id, keep)
    return into
