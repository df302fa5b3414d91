"""Tag types per item (docs/tags.md#tag-types-per-item): ItemTagType stays equal to
EffectiveTag ⋈ Tag.type through every writer that moves either side (SQLite and MariaDB)."""

from __future__ import annotations

import pytest

from apps.media.models import MediaItem
from apps.tags.models import ItemTagType, TagSet
from apps.tags.services import curation, names
from apps.tags.services.effective import effective_refresh_tags
from apps.tags.services.item_types import item_types_mismatches
from tests.tags.factories import (
    alias_make,
    assign,
    effective_build,
    make_item,
    rules_fresh,
    tag_type,
    tags_make,
)

pytestmark = pytest.mark.django_db


def _types(item: MediaItem) -> dict[str, int]:
    rows = ItemTagType.objects.filter(media_item=item).values_list("tag_type__key", "tag_count")
    return dict(rows)


def test_curated_edits_keep_the_item_types() -> None:
    item = make_item(seed=1)
    tag_set, _ = curation.tag_set_curated_add(media_item=item, names=["character:saber", "sky", "hat"])
    assert _types(item) == {"character": 1, "general": 2}
    curation.tag_set_edit(tag_set=tag_set, remove=["saber"])
    assert _types(item) == {"general": 2}
    assert item_types_mismatches() == 0


def test_retyping_a_tag_moves_every_item_carrying_it() -> None:
    first, second = make_item(seed=1), make_item(seed=2)
    curation.tag_set_curated_add(media_item=first, names=["sky"])
    curation.tag_set_curated_add(media_item=second, names=["sky", "hat"])
    sky = names.tag_update(tag=tags_make(["sky"])["sky"], type=tag_type("character"))
    assert (_types(first), _types(second)) == ({"character": 1}, {"character": 1, "general": 1})
    # A type prefix gives a default-typed tag its type (names._retype): its items follow.
    curation.tag_set_curated_add(media_item=make_item(seed=3), names=["copyright:hat"])
    assert _types(second) == {"character": 1, "copyright": 1}
    assert sky.type.key == "character"
    assert item_types_mismatches() == 0


def test_rule_rebuilds_and_bulk_refreshes_keep_them() -> None:
    tags = tags_make(["nero"], type_key="character") | tags_make(["red", "blue"])
    item = make_item(seed=1)
    assign([(item.pk, TagSet.Kind.CURATED, tags["red"].pk)])
    effective_build([item.pk])
    assert _types(item) == {"general": 1}
    alias_make(tags["red"], tags["nero"])  # red → nero (a character): the rebuild follows the rule
    effective_build([item.pk])
    assert _types(item) == {"character": 1}
    assign([(item.pk, TagSet.Kind.CURATED, tags["blue"].pk)])
    effective_refresh_tags(item_ids=[item.pk], tag_ids=[tags["blue"].pk], rules=rules_fresh())
    assert _types(item) == {"character": 1, "general": 1}
    assert item_types_mismatches() == 0


def test_deleting_an_item_drops_its_rows() -> None:
    item = make_item(seed=1)
    curation.tag_set_curated_add(media_item=item, names=["sky"])
    MediaItem.objects.filter(pk=item.pk).delete()
    assert not ItemTagType.objects.exists()
