"""The per-item pipeline on hand-made cases (docs/mappings.md#pipeline)."""

from __future__ import annotations

import pytest

from apps.mappings.services.apply import prepare, results_for
from apps.mappings.services.preview import mapping_preview
from apps.tags.models import TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import alias_make, assign, closure_make, items_make, rules_fresh, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED


@pytest.fixture
def danbooru():
    return vocabulary_default()


@pytest.fixture
def e621():
    return vocabulary_make("e621")


def _caption(profile, item):
    return results_for(prepare(profile, rules_fresh()), [item.pk])[item.pk]


def test_map_rule_guard_and_priority(danbooru, e621):
    src = tags_make(["1girl", "cat_ears", "kemonomimi", "smile"], vocabulary=danbooru)
    item = items_make(1)[0]
    assign([(item.pk, CURATED, src[n].pk) for n in ("1girl", "cat_ears", "smile")])
    mapping = set_make(
        danbooru,
        e621,
        [
            ("1girl", ["female", "solo"]),
            ("cat_ears", "cat_ears"),
            ("cat_ears", "nekomimi", "map", "1girl", "", 5),
            ("smile", [], "drop"),
        ],
    )
    profile = make = profile_make(e621, [mapping], input_scope="curated", separator=",")
    result = _caption(make, item)
    assert [t.trace.via for t in result.tags] == ["rule", "rule", "rule"]
    assert sorted(result.caption.split(",")) == ["female", "nekomimi", "solo"]
    assert result.dropped == [src["smile"].pk]
    assert profile.version == 1


def test_unmapped_match_name_and_flags(danbooru, e621):
    src = tags_make(["tail", "wings"], vocabulary=danbooru)
    tags_make(["tail"], vocabulary=e621)
    item = items_make(1)[0]
    assign([(item.pk, CURATED, src["tail"].pk), (item.pk, CURATED, src["wings"].pk)])
    mapping = set_make(danbooru, e621, [])
    profile = profile_make(e621, [mapping], input_scope="curated", unmapped_policy="flag")
    flagged = _caption(profile, item)
    assert flagged.flags == ("empty", "unmapped", "incomplete")
    named = profile_make(e621, [mapping], input_scope="curated", unmapped_policy="match_name")
    assert _caption(named, item).caption == "tail"


def test_match_name_finds_target_names_that_keep_upper_case(danbooru, e621):
    src = tags_make(["long_hair", "éclair", "tail"], vocabulary=danbooru)
    target = tags_make(["Long_Hair", "Éclair", "Tail", "tail"], vocabulary=e621)
    item = items_make(1)[0]
    assign([(item.pk, CURATED, src[n].pk) for n in ("long_hair", "éclair", "tail")])
    mapping = set_make(danbooru, e621, [])
    profile = profile_make(e621, [mapping], input_scope="curated", unmapped_policy="match_name")
    result = _caption(profile, item)
    out = {t.tag_id for t in result.tags}
    assert target["Long_Hair"].pk in out
    assert target["Éclair"].pk in out  # non-ASCII upper case folds on SQLite too
    assert target["tail"].pk in out  # an exact spelling wins over a folded one
    assert target["Tail"].pk not in out
    assert result.unmapped == []


def test_aliases_implications_prune_and_render(danbooru):
    t = tags_make(["long_hair", "very_long_hair", "hair", "saber_(fate)", "lh"], vocabulary=danbooru)
    alias_make(t["lh"], t["long_hair"])
    closure_make([(t["very_long_hair"], t["long_hair"], 1), (t["long_hair"], t["hair"], 1)])
    closure_make([(t["very_long_hair"], t["hair"], 2)])
    item = items_make(1)[0]
    assign([(item.pk, CURATED, t[n].pk) for n in ("lh", "very_long_hair", "saber_(fate)")])
    cleanup = set_make(danbooru, danbooru, [("saber_(fate)", [], "keep")])
    pruned = profile_make(danbooru, [cleanup], input_scope="curated", implication_policy="prune_implied")
    assert _caption(pruned, item).caption == "saber \\(fate\\), very long hair"
    parents = profile_make(danbooru, [cleanup], input_scope="curated", implication_policy="add_parents")
    assert sorted(_caption(parents, item).caption.split(", ")) == [
        "hair",
        "long hair",
        "saber \\(fate\\)",
        "very long hair",
    ]


def test_preview_on_ids(danbooru, e621, curator):
    src = tags_make(["a", "b"], vocabulary=danbooru)
    items = items_make(3)
    assign([(i.pk, CURATED, src["a"].pk) for i in items] + [(items[0].pk, CURATED, src["b"].pk)])
    mapping = set_make(danbooru, e621, [("a", "x")])
    profile = profile_make(e621, [mapping], input_scope="curated", unmapped_policy="drop")
    preview = mapping_preview(profile=profile, ids=[i.pk for i in items], actor=curator)
    assert preview["aggregates"]["top_unmapped"] == [{"tag_id": src["b"].pk, "name": "b", "count": 1}]
    assert preview["sample"][0]["output"][0]["trace"]["inputs"] == ["a"]
