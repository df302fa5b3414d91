"""Tag types per item (docs/tags.md#tag-types-per-item): the one writer of ItemTagType.

A row (type, item, n) says the item's effective tags include n of that type. It is derived from
EffectiveTag ⋈ Tag.type and recomputed, set-based, for exactly the items whose side changed:

* `item_types_refresh(item_ids)`: the effective-tag writers (services/effective.py) call it, in
  their transaction, for the items whose effective tags they added or removed;
* `item_types_refresh_tags(tag_ids)`: the tag writers that change a tag's type
  (services/names.py, services/vocabulary_io.py) call it for the items carrying those tags.

Each is one DELETE and one INSERT … SELECT … GROUP BY per chunk of items, never a per-row loop.
Tags are never deleted (they are deprecated) and a type with tags cannot be deleted; deleting an
item cascades its rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from apps.tags.models import EffectiveTag, ItemTagType

CHUNK = 5000
_INSERT = (
    "INSERT INTO tags_itemtagtype (tag_type_id, media_item_id, tag_count) "
    "SELECT t.type_id, e.media_item_id, COUNT(*) FROM tags_effectivetag e "
    "INNER JOIN tags_tag t ON t.id = e.tag_id WHERE e.media_item_id IN ({items}) "
    "GROUP BY t.type_id, e.media_item_id"
)


def item_types_refresh(*, item_ids: Iterable[int]) -> None:
    """Recompute the rows of these items from their effective tags (call inside the writer's
    transaction, after its effective-tag writes)."""
    ids = sorted(set(item_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        ItemTagType.objects.filter(media_item_id__in=chunk).delete()
        marks = ", ".join(["%s"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(_INSERT.format(items=marks), chunk)


def item_types_refresh_tags(*, tag_ids: Iterable[int]) -> None:
    """Recompute the rows of every item carrying one of these tags (their type changed): one
    DELETE and one INSERT … SELECT whose items are a subquery on EffectiveTag's primary key
    (tag, item), so a retyped tag on 10⁵ items moves no ids through Python."""
    tags = sorted(set(tag_ids))
    for start in range(0, len(tags), CHUNK):
        chunk = tags[start : start + CHUNK]
        carrying = EffectiveTag.objects.filter(tag_id__in=chunk).values("media_item_id")
        ItemTagType.objects.filter(media_item_id__in=carrying).delete()
        marks = ", ".join(["%s"] * len(chunk))
        items = f"SELECT c.media_item_id FROM tags_effectivetag c WHERE c.tag_id IN ({marks})"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(_INSERT.format(items=items), chunk)


def item_types_mismatches() -> int:
    """Rows that differ from EffectiveTag ⋈ Tag.type, both ways (0 when exact): for tests and
    checks. A full pass; not for requests."""
    sql = (
        "SELECT COUNT(*) FROM ("
        "SELECT t.type_id AS ty, e.media_item_id AS it, COUNT(*) AS n FROM tags_effectivetag e "
        "INNER JOIN tags_tag t ON t.id = e.tag_id GROUP BY t.type_id, e.media_item_id) d "
        "LEFT JOIN tags_itemtagtype f ON f.tag_type_id = d.ty AND f.media_item_id = d.it "
        "AND f.tag_count = d.n WHERE f.media_item_id IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        missing = cursor.fetchone()[0]
    derived = EffectiveTag.objects.values("tag__type_id", "media_item_id").distinct().count()
    return int(missing) + abs(ItemTagType.objects.count() - (derived - int(missing)))
