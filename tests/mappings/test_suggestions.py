"""Suggestions: name, close spelling and co-occurrence evidence; rejections stick; accept adds a rule."""

from __future__ import annotations

import pytest

from apps.mappings.models import TagMapping
from apps.mappings.services.suggestions import mapping_suggestions, suggestion_accept, suggestion_reject
from apps.tags.models import Tag, TagSet
from apps.tags.services.names import tags_get_or_create, vocabulary_default
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    danbooru, e621 = vocabulary_default(), vocabulary_make("e621")
    src = tags_make(["feline", "long_hair"], vocabulary=danbooru)
    tags_get_or_create(vocabulary=e621, names=["cat", "long_hairs"])
    tgt = {t.name: t for t in Tag.objects.filter(vocabulary=e621)}
    items = items_make(4)
    assign([(i.pk, TagSet.Kind.SOURCE, src["feline"].pk) for i in items])
    assign([(i.pk, TagSet.Kind.TAGGER, tgt["cat"].pk) for i in items[:3]], vocabulary=e621, slot="wd@1")
    Tag.objects.filter(pk__in=[src["feline"].pk, src["long_hair"].pk]).update(media_count=4)
    profile = profile_make(e621, [set_make(danbooru, e621, [])])
    return profile, src, tgt


def _by_source(profile):
    return {s["source"]: s for s in mapping_suggestions(profile=profile)}


def test_cooccurrence_evidence(world):
    profile, _src, _tgt = world
    candidate = _by_source(profile)["feline"]["candidates"][0]
    assert (candidate["target"], candidate["evidence"][0]["both"], candidate["evidence"][0]["p"]) == (
        "cat",
        3,
        0.75,
    )


def test_close_spelling(world):
    profile, _src, _tgt = world
    candidate = _by_source(profile)["long_hair"]["candidates"][0]
    assert (candidate["target"], candidate["evidence"][0]["kind"]) == ("long_hairs", "spelling")


def test_rejected_pair_is_not_proposed_again(world):
    profile, src, tgt = world
    suggestion_reject(profile=profile, source_id=src["feline"].pk, target_id=tgt["cat"].pk)
    assert _by_source(profile)["feline"]["candidates"] == []


def test_accept_adds_a_rule_and_the_tag_leaves_the_list(world):
    profile, _src, _tgt = world
    suggestion_accept(profile=profile, source="feline", targets=["cat"])
    assert TagMapping.objects.filter(source_tag__name="feline").exists()
    assert "feline" not in _by_source(profile)


def test_name_evidence_finds_a_target_that_keeps_upper_case(world):
    profile, src, _tgt = world
    danbooru = src["feline"].vocabulary
    tags_make(["striped_tail"], vocabulary=danbooru)
    Tag.objects.filter(vocabulary=danbooru, name="striped_tail").update(media_count=2)
    target = tags_make(["Striped_Tail"], vocabulary=profile.target_vocabulary)["Striped_Tail"]
    candidate = _by_source(profile)["striped_tail"]["candidates"][0]
    assert candidate["target"] == target.name
    assert candidate["evidence"][0] == {"kind": "name", "name": "Striped_Tail"}


def test_alias_evidence_proposes_the_target_aliases_consequent(world):
    from apps.tags.services.rules import alias_create

    profile, src, _tgt = world
    danbooru = src["feline"].vocabulary
    tags_make(["kitty"], vocabulary=danbooru)
    Tag.objects.filter(vocabulary=danbooru, name="kitty").update(media_count=3)
    alias_create(antecedent="kitty", consequent="cat", activate=True, vocabulary=profile.target_vocabulary)
    candidates = _by_source(profile)["kitty"]["candidates"]
    alias = next(c for c in candidates if any(e["kind"] == "alias" for e in c["evidence"]))
    assert (alias["target"], alias["score"]) == ("cat", 0.95)
    assert {"kind": "alias", "antecedent": "kitty"} in alias["evidence"]
