"""Tag names, tag types and tag templates: normalisation, words, CSV import/export, build from usage."""

from __future__ import annotations

import io
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache

from apps.core.exceptions import ConflictError, DomainError, PayloadTooLargeError
from apps.tags.models import (
    AliasResolution,
    EffectiveTag,
    RuleStatus,
    Tag,
    TagAlias,
    TagType,
    TagWord,
    Vocabulary,
)
from apps.tags.selectors.autocomplete import tag_autocomplete
from apps.tags.services import names, vocabulary_io
from apps.tags.services.names import (
    tag_create,
    tag_name_normalise,
    tag_update,
    tags_get_or_create,
    vocabulary_default,
)
from apps.tags.services.vocabularies import (
    tag_type_create,
    tag_type_delete,
    tag_type_update,
    vocabulary_create,
    vocabulary_delete,
    vocabulary_update,
)
from apps.tags.services.vocabulary_io import (
    vocabulary_build_from_usage,
    vocabulary_export_rows,
    vocabulary_import_csv,
)
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def vocab() -> Vocabulary:
    return vocabulary_create(slug="danbooru", name="Danbooru")


def types() -> dict[str, TagType]:
    return {t.key: t for t in TagType.objects.all()}


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --- names ------------------------------------------------------------------------------------------


def test_tag_name_normalise_applies_case_and_separator_rules(vocab):
    assert tag_name_normalise(raw="  Long   Hair ", vocabulary=vocab) == "long_hair"
    spaced = vocabulary_create(slug="nl", name="Natural", word_separator=" ", case="preserve")
    assert tag_name_normalise(raw="Long_Hair  now", vocabulary=spaced) == "Long_Hair now"


@pytest.mark.parametrize(
    "raw", ["width:100", "Order:score", "chartags:2", "-solo", "a,b", "or", "x\x00y", ""]
)
def test_tag_name_normalise_refuses_reserved_and_malformed_names(vocab, raw):
    with pytest.raises(DomainError) as err:
        tag_name_normalise(raw=raw, vocabulary=vocab)
    assert err.value.code in ("tags.invalid_name", "tags.reserved_prefix")


def test_tag_name_normalise_allows_colons_that_are_not_qualifiers(vocab):
    assert tag_name_normalise(raw=":d", vocabulary=vocab) == ":d"
    assert tag_name_normalise(raw="re:zero", vocabulary=vocab) == "re:zero"


def test_long_hair_after_long_hair_is_a_duplicate(vocab):
    first = tag_create(vocabulary=vocab, name="long_hair")
    with pytest.raises(ConflictError) as err:
        tag_create(vocabulary=vocab, name="Long Hair")
    assert err.value.code == "tags.duplicate"
    assert err.value.details["id"] == first.pk
    assert tags_get_or_create(vocabulary=vocab, names=["long_hair"])["long_hair"].pk == first.pk


def test_accented_and_plain_names_coexist(vocab):
    tags = tags_get_or_create(vocabulary=vocab, names=["é", "e", "café", "cafe"])
    assert len({t.pk for t in tags.values()}) == 4
    assert set(Tag.objects.filter(vocabulary=vocab).values_list("name", flat=True)) == {
        "é",
        "e",
        "café",
        "cafe",
    }
    assert Tag.objects.get(vocabulary=vocab, name="é").pk == tags["é"].pk


def test_closed_vocabulary_refuses_unknown_tags_with_a_clear_error(vocab):
    tags_get_or_create(vocabulary=vocab, names=["known"])
    vocab = vocabulary_update(vocabulary=vocab, policy=Vocabulary.Policy.CLOSED)
    assert "known" in tags_get_or_create(vocabulary=vocab, names=["known"])
    with pytest.raises(DomainError) as err:
        tags_get_or_create(vocabulary=vocab, names=["known", "new_thing"])
    assert err.value.code == "tags.unknown_tag"
    assert err.value.details["unknown"] == ["new_thing"]
    assert "closed" in err.value.message
    assert not Tag.objects.filter(vocabulary=vocab, name="new_thing").exists()


def test_new_tags_get_word_rows_for_autocomplete(vocab):
    tags = tags_get_or_create(vocabulary=vocab, names=["long_hair", "saber_(fate)", "a_b"])
    words = set(TagWord.objects.filter(vocabulary=vocab).values_list("word", "tag_id"))
    assert ("hair", tags["long_hair"].pk) in words
    assert ("long", tags["long_hair"].pk) not in words  # the first word is a name prefix already
    assert ("fate", tags["saber_(fate)"].pk) in words
    assert not any(tag_id == tags["a_b"].pk for _w, tag_id in words)  # words < 2 chars skipped
    TagWord.objects.all().delete()
    assert names.tag_words_rebuild(vocabulary=vocab) == 2


def test_tag_update_changes_type_and_deprecates(vocab):
    tag = tags_get_or_create(vocabulary=vocab, names=["solo"])["solo"]
    tag = tag_update(tag=tag, type=types()["meta"], is_deprecated=True, display_name=" Solo ")
    tag.refresh_from_db()
    assert (tag.type.key, tag.is_deprecated, tag.display_name) == ("meta", True, "Solo")
    with pytest.raises(DomainError):
        tag_update(tag=tag, name="renamed")


def test_tags_recount_repairs_drift(vocab):
    tag = tags_get_or_create(vocabulary=vocab, names=["x"])["x"]
    item = make_item()
    EffectiveTag.objects.create(tag=tag, media_item=item)
    Tag.objects.filter(pk=tag.pk).update(media_count=7)
    assert names.tags_recount(tag_ids=[tag.pk]) == 1
    tag.refresh_from_db()
    assert tag.media_count == 1


# --- tag types -----------------------------------------------------------------------------------------


def test_tag_type_create_validates_key_and_refuses_qualifiers():
    created = tag_type_create(key="pose", name="Pose", color="#AABBCC", default_dropout=500)
    assert created.color == "#aabbcc"
    assert created.default_dropout == 500
    for key in ("width", "order", "posetags", "Bad Key"):
        with pytest.raises(DomainError):
            tag_type_create(key=key, name="X")
    with pytest.raises(ConflictError) as err:
        tag_type_create(key="pose", name="Again")
    assert err.value.code == "tags.duplicate_type"
    with pytest.raises(ConflictError):
        tag_type_create(key="char", name="Clashes with character's short key")


def test_tag_type_update_and_default_switch():
    pose = tag_type_create(key="pose", name="Pose")
    pose = tag_type_update(tag_type=pose, caption_zone="suffix", shuffleable=False, exported=False)
    assert (pose.caption_zone, pose.shuffleable, pose.exported) == ("suffix", False, False)
    tag_type_update(tag_type=pose, is_default=True)
    assert TagType.objects.get(is_default_key=True).key == "pose"
    assert names.tag_type_default().key == "pose"


def test_tag_type_delete_refuses_a_type_in_use(vocab):
    pose = tag_type_create(key="pose", name="Pose")
    tag = tags_get_or_create(vocabulary=vocab, names=["standing"])["standing"]
    tag_update(tag=tag, type=pose)
    with pytest.raises(ConflictError) as err:
        tag_type_delete(tag_type=pose)
    assert err.value.status_code == 409
    assert err.value.code == "tags.type_in_use"
    with pytest.raises(ConflictError):
        tag_type_delete(tag_type=types()["general"])  # the default type
    tag_update(tag=tag, type=types()["general"])
    tag_type_delete(tag_type=pose)
    assert not TagType.objects.filter(key="pose").exists()


# --- vocabularies -------------------------------------------------------------------------------------


def test_vocabulary_slug_is_unique_and_rules_lock_once_it_has_tags(vocab):
    with pytest.raises(ConflictError):
        vocabulary_create(slug="danbooru", name="Again")
    vocabulary_update(vocabulary=vocab, case="preserve")  # no tags yet
    tags_get_or_create(vocabulary=vocab, names=["a_tag"])
    with pytest.raises(ConflictError) as err:
        vocabulary_update(vocabulary=vocab, word_separator=" ")
    assert err.value.code == "tags.vocabulary_rules_locked"
    vocab = vocabulary_update(vocabulary=vocab, max_length=100, default_tagger_threshold=5000)
    assert (vocab.max_length, vocab.default_tagger_threshold) == (100, 5000)
    with pytest.raises(DomainError):
        vocabulary_update(vocabulary=vocab, max_length=500)


def test_vocabulary_delete_only_empty_non_default(vocab):
    with pytest.raises(ConflictError):
        vocabulary_delete(vocabulary=vocabulary_default())
    tags_get_or_create(vocabulary=vocab, names=["a"])
    with pytest.raises(ConflictError):
        vocabulary_delete(vocabulary=vocab)
    empty = vocabulary_create(slug="empty", name="Empty")
    vocabulary_delete(vocabulary=empty)
    assert not Vocabulary.objects.filter(slug="empty").exists()


# --- CSV import -----------------------------------------------------------------------------------------


def test_import_maps_danbooru_category_numbers(vocab):
    data = csv_bytes(
        "name,type,count,aliases",
        '1girl,0,4114588,"1girls,sole_female"',
        "kantoku,1,1000,",
        "fate_(series),3,500,",
        "saber_(fate),4,400,",
        "highres,5,300,",
    )
    result = vocabulary_import_csv(vocabulary=vocab, data=data)
    assert result.scheme == "danbooru"
    assert result.errors == []
    assert (result.lines, result.created, result.aliases_created, result.aliases_pending) == (5, 5, 2, 2)
    got = dict(Tag.objects.filter(vocabulary=vocab).values_list("name", "type__key"))
    assert got["1girl"] == "general"
    assert got["kantoku"] == "artist"
    assert got["fate_(series)"] == "copyright"
    assert got["saber_(fate)"] == "character"
    assert got["highres"] == "meta"
    assert got["1girls"] == "general"  # antecedents become tags typed like their ideal
    aliases = TagAlias.objects.filter(vocabulary=vocab)
    assert {(a.antecedent.name, a.consequent.name, a.status) for a in aliases} == {
        ("1girls", "1girl", RuleStatus.PENDING),
        ("sole_female", "1girl", RuleStatus.PENDING),
    }
    assert not AliasResolution.objects.exists()  # pending aliases resolve nothing


def test_import_maps_e621_numbers_when_e621_categories_appear(vocab):
    data = csv_bytes(
        "canine,5,100,", "invalid_tag,6,3,", "conditional_dnp,7,20,", "lore_thing,8,1,", "x,1,1,"
    )
    result = vocabulary_import_csv(vocabulary=vocab, data=data)
    assert result.scheme == "e621"
    assert result.errors == []
    got = dict(Tag.objects.filter(vocabulary=vocab).values_list("name", "type__key"))
    assert got == {
        "canine": "general",
        "invalid_tag": "meta",
        "conditional_dnp": "meta",
        "lore_thing": "general",
        "x": "artist",
    }
    forced = vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("canine,5,100,"), scheme="danbooru")
    assert forced.updated == 1
    assert Tag.objects.get(vocabulary=vocab, name="canine").type.key == "meta"


def test_import_accepts_type_keys_short_keys_and_space_separated_aliases(vocab):
    data = csv_bytes("smile,general,,", "hatsune_miku,char,,miku hatsune_miku_(cosplay)", "wlop,Artist")
    result = vocabulary_import_csv(vocabulary=vocab, data=data)
    assert result.errors == []
    assert result.created == 3  # antecedent tags are not counted as lines
    assert Tag.objects.filter(vocabulary=vocab).count() == 5
    assert Tag.objects.get(vocabulary=vocab, name="hatsune_miku").type.key == "character"
    assert Tag.objects.get(vocabulary=vocab, name="wlop").type.key == "artist"
    assert set(
        TagAlias.objects.filter(consequent__name="hatsune_miku").values_list("antecedent__name", flat=True)
    ) == {"miku", "hatsune_miku_(cosplay)"}


def test_reimport_updates_types_and_never_duplicates(vocab):
    first = csv_bytes("1girl,0,10,1girls", "solo,0,5,")
    vocabulary_import_csv(vocabulary=vocab, data=first)
    counts = (Tag.objects.count(), TagAlias.objects.count(), TagWord.objects.count())
    again = vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("1girl,0,10,1girls", "solo,5,5,"))
    assert (again.created, again.updated, again.unchanged, again.aliases_created) == (0, 1, 1, 0)
    assert again.aliases_existing == 1
    assert (Tag.objects.count(), TagAlias.objects.count(), TagWord.objects.count()) == counts
    assert Tag.objects.get(vocabulary=vocab, name="solo").type.key == "meta"
    assert vocabulary_import_csv(vocabulary=vocab, data=first).updated == 1  # back to general


def test_import_reports_errors_per_line_and_keeps_good_lines(vocab):
    data = csv_bytes(
        "name,type,count,aliases",
        "good,0,1,",
        "width:100,0,1,",
        "bad_type,99,1,",
        "unknown_kind,weird,1,",
        "bad_count,0,many,",
        "Good,0,1,",
        'ok_with_bad_alias,0,1,"-neg,fine_alias"',
        "",
        "# a comment",
        "last,0,1,",
    )
    result = vocabulary_import_csv(vocabulary=vocab, data=data)
    lines = {e["line"]: e["reason"] for e in result.errors}
    assert set(lines) == {3, 4, 5, 6, 7, 8}
    assert "qualifier" in lines[3]
    assert "category 99" in lines[4]
    assert "weird" in lines[5]
    assert "whole number" in lines[6]
    assert "repeats line 2" in lines[7]
    assert "Alias skipped" in lines[8]
    assert set(Tag.objects.filter(vocabulary=vocab).values_list("name", flat=True)) == {
        "good",
        "ok_with_bad_alias",
        "fine_alias",
        "last",
    }
    assert result.errors_total == 6
    assert result.as_dict()["errors_truncated"] is False


def test_import_refuses_an_alias_already_pointing_elsewhere(vocab):
    vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("cat,0,,kitty"))
    result = vocabulary_import_csv(
        vocabulary=vocab, data=csv_bytes("dog,0,,kitty", "bird,0,,birb", "owl,0,,birb")
    )
    reasons = [e["reason"] for e in result.errors]
    assert any("already an alias of 'cat'" in r for r in reasons)
    assert any("already given for 'bird'" in r for r in reasons)
    assert TagAlias.objects.filter(antecedent__name="kitty").count() == 1


def test_import_into_a_closed_vocabulary_adds_known_tags(vocab):
    vocab = vocabulary_update(vocabulary=vocab, policy="closed")
    vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("known,0,,"))
    assert "known" in tags_get_or_create(vocabulary=vocab, names=["known"])


def test_import_activates_aliases_for_rule_approvers(vocab):
    approver = User.objects.create_user("approver")
    approver.user_permissions.add(Permission.objects.get(codename="approve_rules"))
    approver = User.objects.get(pk=approver.pk)
    result = vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("1girl,0,,1girls"), actor=approver)
    assert (result.aliases_activated, result.aliases_pending) == (1, 0)
    alias = TagAlias.objects.get(antecedent__name="1girls")
    assert alias.status == RuleStatus.ACTIVE
    assert AliasResolution.objects.get(tag=alias.antecedent).ideal_tag == alias.consequent


def test_import_refuses_oversized_files_and_bad_encoding(vocab, settings):
    settings.BAGGINTAG_VOCAB_IMPORT_MAX_BYTES = 10
    with pytest.raises(PayloadTooLargeError):
        vocabulary_import_csv(vocabulary=vocab, data=io.BytesIO(b"x" * 11))
    settings.BAGGINTAG_VOCAB_IMPORT_MAX_BYTES = 1000
    with pytest.raises(DomainError) as err:
        vocabulary_import_csv(vocabulary=vocab, data=b"caf\xe9,0\n")
    assert err.value.code == "tags.import_encoding"


def test_import_of_20k_lines_is_set_based(vocab, django_assert_max_num_queries):
    lines = [f"tag_number_{i},{i % 6 if i % 6 != 2 else 0},{i},alias_{i}" for i in range(20_000)]
    data = csv_bytes("name,type,count,aliases", *lines)
    started = time.monotonic()
    # Per-row statements would be ≥ 40,000; batches keep it to a few hundred on SQLite.
    with django_assert_max_num_queries(800):
        result = vocabulary_import_csv(vocabulary=vocab, data=data)
    elapsed = time.monotonic() - started
    assert result.errors == []
    assert result.created == 20_000
    assert result.aliases_created == 20_000
    assert Tag.objects.filter(vocabulary=vocab).count() == 40_000
    assert elapsed < 60
    with django_assert_max_num_queries(300):
        again = vocabulary_import_csv(vocabulary=vocab, data=data)
    assert (again.created, again.updated, again.aliases_created, again.aliases_existing) == (0, 0, 0, 20_000)


# --- export and build ----------------------------------------------------------------------------------


def test_export_round_trips_through_import(vocab):
    source = csv_bytes('1girl,0,3,"1girls,sole_female"', "kantoku,1,2,", "highres,5,1,")
    vocabulary_import_csv(vocabulary=vocab, data=source)
    rows = list(vocabulary_export_rows(vocabulary=vocab))
    assert rows[0] == ["name", "type", "count", "aliases"]
    body = {r[0]: r for r in rows[1:]}
    assert body["1girl"][1:] == ["general", "0", "1girls,sole_female"]
    assert "1girls" not in body  # antecedents appear as aliases only
    other = vocabulary_create(slug="copy", name="Copy")
    text = "".join(vocabulary_io.vocabulary_export_csv(vocabulary=vocab)).encode()
    result = vocabulary_import_csv(vocabulary=other, data=text)
    assert result.errors == []
    assert result.created == 3
    assert result.aliases_created == 2
    assert list(vocabulary_export_rows(vocabulary=other))[1:] == rows[1:]


def test_build_from_usage_creates_and_refreshes_a_template(vocab):
    default = vocabulary_default()
    tags = tags_get_or_create(vocabulary=default, names=["used", "also_used", "unused"])
    Tag.objects.filter(pk__in=[tags["used"].pk, tags["also_used"].pk]).update(media_count=3)
    tag_update(tag=tags["used"], type=types()["character"])
    result = vocabulary_build_from_usage(vocabulary=vocab, source=default)
    assert (result.lines, result.created) == (2, 2)
    got = dict(Tag.objects.filter(vocabulary=vocab).values_list("name", "type__key"))
    assert got == {"used": "character", "also_used": "general"}
    tag_update(tag=tags["used"], type=types()["artist"])
    again = vocabulary_build_from_usage(vocabulary=vocab, source=default, min_count=2)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    with pytest.raises(DomainError):
        vocabulary_build_from_usage(vocabulary=vocab, source=vocab)


def test_build_from_a_set_kind_counts_current_assignments(vocab):
    from apps.tags.services.tagsets import tag_set_create_source

    item = make_item()
    tag_set_create_source(media_item=item, origin=None, origin_label="booru", names=["from_source"])
    assert (
        vocabulary_build_from_usage(vocabulary=vocab, source=vocabulary_default(), scope="curated").lines == 0
    )
    result = vocabulary_build_from_usage(vocabulary=vocab, source=vocabulary_default(), scope="source")
    assert result.created == 1
    assert Tag.objects.filter(vocabulary=vocab, name="from_source").exists()


# --- autocomplete ------------------------------------------------------------------------------------


def _counts(vocab: Vocabulary, **counts: int) -> dict[str, Tag]:
    tags = tags_get_or_create(vocabulary=vocab, names=list(counts))
    for name, count in counts.items():
        Tag.objects.filter(pk=tags[name].pk).update(media_count=count)
    return tags


def test_autocomplete_ranks_prefix_and_word_matches_by_count(vocab):
    _counts(vocab, long_hair=50, long_sleeves=80, blonde_hair=200, hair_ornament=10, longcat=1)
    found = tag_autocomplete(q="long", vocabulary=vocab)
    assert [s.name for s in found] == ["long_sleeves", "long_hair", "longcat"]
    by_word = tag_autocomplete(q="Hair", vocabulary=vocab)
    assert [s.name for s in by_word] == ["blonde_hair", "long_hair", "hair_ornament"]
    assert {s.match for s in by_word} == {"word", "prefix"}


def test_autocomplete_shows_antecedents_with_their_ideal(vocab):
    from apps.tags.services import rules

    _counts(vocab, **{"1girl": 500, "1girls": 0})
    rules.alias_activate(alias=rules.alias_create(antecedent="1girls", consequent="1girl", vocabulary=vocab))
    found = tag_autocomplete(q="1girls", vocabulary=vocab)
    assert [(s.label, s.media_count) for s in found] == [("1girls → 1girl", 500)]
    assert found[0].as_dict()["ideal"]["name"] == "1girl"
    both = tag_autocomplete(q="1gi", vocabulary=vocab)
    assert [s.name for s in both] == ["1girl"]  # the antecedent adds nothing when its ideal shows


def test_autocomplete_tolerates_one_typo_from_four_characters(vocab):
    _counts(vocab, blonde_hair=200, blue_eyes=100)
    assert [s.name for s in tag_autocomplete(q="bolnde_hair", vocabulary=vocab)] == ["blonde_hair"]
    assert [s.name for s in tag_autocomplete(q="blomde_h", vocabulary=vocab)] == ["blonde_hair"]
    assert [s.name for s in tag_autocomplete(q="blu_eyes", vocabulary=vocab)] == ["blue_eyes"]
    assert tag_autocomplete(q="blx", vocabulary=vocab) == []  # too short for typos


def test_autocomplete_hides_deprecated_tags_and_filters_by_type(vocab):
    tags = _counts(vocab, red_eyes=5, red_hair=3)
    tag_update(tag=tags["red_eyes"], is_deprecated=True)
    assert [s.name for s in tag_autocomplete(q="red", vocabulary=vocab)] == ["red_hair"]
    tag_update(tag=tags["red_hair"], type=types()["meta"])
    assert tag_autocomplete(q="red", vocabulary=vocab, tag_type=types()["general"]) == []


def test_autocomplete_serves_short_prefixes_from_the_cache(vocab, django_assert_num_queries):
    _counts(vocab, ab=3, abc=2)
    first = tag_autocomplete(q="ab", vocabulary=vocab)
    with django_assert_num_queries(0):
        assert tag_autocomplete(q="ab", vocabulary=vocab) == first


def test_reimport_does_not_propose_a_rejected_alias_again(vocab):
    from apps.tags.services import rules

    vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("cat,0,,kitty"))
    rules.alias_retire(alias=TagAlias.objects.get(antecedent__name="kitty"), reject=True)
    again = vocabulary_import_csv(vocabulary=vocab, data=csv_bytes("cat,0,,kitty"))
    assert (again.aliases_created, again.aliases_existing, again.errors) == (0, 1, [])
    assert TagAlias.objects.filter(antecedent__name="kitty").count() == 1
