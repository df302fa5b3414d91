"""Apply writes one derived set per item through the one writer; undo restores; staleness."""

from __future__ import annotations

import pytest

from apps.mappings.models import MappedSet
from apps.mappings.selectors import stale_condition
from apps.mappings.services.apply import mapping_apply, mapping_undo
from apps.mappings.services.profiles import profile_update
from apps.mappings.services.rules import mapping_rules_append
from apps.media.models import MediaItem
from apps.tags import slots
from apps.tags.models import Operation, TagAssignment, TagSet
from apps.tags.services.names import vocabulary_default
from tests.mappings.factories import profile_make, rules, set_make, vocabulary_make
from tests.tags.factories import assign, items_make, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED


@pytest.fixture
def world(curator):
    danbooru = vocabulary_default()
    e621 = vocabulary_make("e621")
    src = tags_make(["a", "b", "c"], vocabulary=danbooru)
    items = items_make(3)
    assign(
        [(i.pk, CURATED, src[n].pk) for i in items for n in ("a", "b")]
        + [(items[0].pk, CURATED, src["c"].pk)]
    )
    mapping = set_make(danbooru, e621, [("a", "x"), ("b", ["y", "z"])])
    profile = profile_make(e621, [mapping], input_scope="curated", unmapped_policy="drop")
    return {"items": items, "profile": profile, "set": mapping, "actor": curator}


def _derived(item, profile):
    return dict(
        TagAssignment.objects.filter(
            media_item_id=item.pk, tagset__slot=slots.mapping(profile.pk), state=TagAssignment.State.CURRENT
        ).values_list("tag__name", "position")
    )


def test_apply_writes_one_derived_set_per_item(world):
    outcome = mapping_apply(
        profile=world["profile"], ids=[i.pk for i in world["items"]], actor=world["actor"]
    )
    assert outcome.operation.status == Operation.Status.APPLIED
    assert _derived(world["items"][0], world["profile"]) == {"x": 0, "y": 1, "z": 2}
    assert (
        TagSet.objects.filter(slot=slots.mapping(world["profile"].pk), kind=TagSet.Kind.DERIVED).count() == 3
    )


def test_apply_never_touches_curated_sets(world):
    before = list(
        TagAssignment.objects.filter(kind=CURATED).values_list("tagset_id", "tag_id", "state", "updated_at")
    )
    mapping_apply(profile=world["profile"], ids=[i.pk for i in world["items"]], actor=world["actor"])
    after = list(
        TagAssignment.objects.filter(kind=CURATED).values_list("tagset_id", "tag_id", "state", "updated_at")
    )
    assert before == after


def test_reapply_replaces_contents(world):
    ids = [i.pk for i in world["items"]]
    mapping_apply(profile=world["profile"], ids=ids, actor=world["actor"])
    mapping_rules_append(mapping_set=world["set"], rules=rules(("b", "w")), create_targets=True)
    mapping_apply(profile=world["profile"], ids=ids, actor=world["actor"])
    assert set(_derived(world["items"][1], world["profile"])) == {"x", "w"}


def test_undo_drops_sets_the_apply_created(world):
    outcome = mapping_apply(
        profile=world["profile"], ids=[i.pk for i in world["items"]], actor=world["actor"]
    )
    mapping_undo(operation=outcome.operation, actor=world["actor"])
    assert not TagSet.objects.filter(slot=slots.mapping(world["profile"].pk)).exists()


def test_undo_restores_previous_contents(world):
    ids = [i.pk for i in world["items"]]
    mapping_apply(profile=world["profile"], ids=ids, actor=world["actor"])
    mapping_rules_append(mapping_set=world["set"], rules=rules(("b", "w")), create_targets=True)
    second = mapping_apply(profile=world["profile"], ids=ids, actor=world["actor"])
    mapping_undo(operation=second.operation, actor=world["actor"])
    assert _derived(world["items"][1], world["profile"]) == {"x": 0, "y": 1, "z": 2}


def test_stale_after_rule_change_profile_change_and_undo(world):
    ids = [i.pk for i in world["items"]]
    stale = lambda: sorted(MediaItem.objects.filter(stale_condition()).values_list("pk", flat=True))  # noqa: E731
    first = mapping_apply(profile=world["profile"], ids=ids[:2], actor=world["actor"])
    assert stale() == []
    mapping_rules_append(mapping_set=world["set"], rules=rules(("c", "x")))
    assert stale() == ids[:2]
    mapping_apply(profile=world["profile"], ids=ids[:1], actor=world["actor"])
    assert stale() == ids[1:2]
    profile_update(profile=world["profile"], max_tags=5)
    assert stale() == ids[:2]
    assert MappedSet.objects.filter(operation_id=first.operation.pk).count() == 1


def test_apply_as_job_above_the_sync_limit(world, monkeypatch):
    from apps.mappings.services import apply

    monkeypatch.setattr(apply, "SYNC_MAX_ITEMS", 2)
    outcome = mapping_apply(
        profile=world["profile"], ids=[i.pk for i in world["items"]], actor=world["actor"]
    )
    assert outcome.job is not None
    apply.mapping_apply_run(job_id=outcome.job.pk)
    assert Operation.objects.get(pk=outcome.operation.pk).counters["items_done"] == 3


def test_search_has_stale_mapping(world, api):
    ids = [i.pk for i in world["items"]]
    mapping_apply(profile=world["profile"], ids=ids[:2], actor=world["actor"])
    mapping_rules_append(mapping_set=world["set"], rules=rules(("c", "x")))
    mapping_apply(profile=world["profile"], ids=ids[:1], actor=world["actor"])
    found = api.get("/api/media/search", {"q": "has:stale_mapping"}).json()
    assert [r["id"] for r in found["results"]] == [ids[1]]


def test_search_has_unknown_value_is_400(api, world):
    response = api.get("/api/media/search", {"q": "has:stale_mappings"})
    assert response.status_code == 400
    assert "stale_mapping" in response.json()["details"]["hint"]


def test_undoing_the_undo_of_an_apply_applies_the_profile_again(world):
    from apps.tags.services.operations import operation_undo

    outcome = mapping_apply(
        profile=world["profile"], ids=[i.pk for i in world["items"]], actor=world["actor"]
    )
    undo = mapping_undo(operation=outcome.operation, actor=world["actor"])
    assert not TagSet.objects.filter(slot=slots.mapping(world["profile"].pk)).exists()
    redo = operation_undo(operation=undo, actor=world["actor"]).operation
    assert redo.status == Operation.Status.APPLIED
    assert redo.counters["reapplied_items"] == 3
    assert _derived(world["items"][0], world["profile"]) == {"x": 0, "y": 1, "z": 2}
    assert TagSet.objects.filter(slot=slots.mapping(world["profile"].pk)).count() == 3


def test_a_clean_up_profiles_output_is_not_copied_into_a_new_curated_set(curator):
    from apps.tags.services import operations as ops
    from apps.tags.services import tag_set_curated_get_or_create

    danbooru = vocabulary_default()
    src = tags_make(["a", "b"], vocabulary=danbooru)
    items = items_make(2)
    assign([(i.pk, TagSet.Kind.SOURCE, src["a"].pk) for i in items])
    cleanup = set_make(danbooru, danbooru, [("a", "b")], create_targets=True)
    profile = profile_make(danbooru, [cleanup], input_scope="source", unmapped_policy="drop")
    mapping_apply(profile=profile, ids=[i.pk for i in items], actor=curator)
    assert _derived(items[0], profile) == {"b": 0}
    curated = tag_set_curated_get_or_create(media_item=items[0], actor=curator)  # the editor's path
    seeded = TagAssignment.objects.filter(tagset=curated, state=TagAssignment.State.CURRENT)
    assert sorted(seeded.values_list("tag__name", flat=True)) == ["a"]
    preview = ops.operation_preview(action="add", tags=["c"], ids=[items[1].pk], actor=curator)
    assert preview.counts["seeded"] == 1  # the bulk path seeds what the editor would
    ops.operation_apply(operation=preview.operation, actor=curator)
    bulk = TagAssignment.objects.filter(
        media_item=items[1], kind=TagSet.Kind.CURATED, state=TagAssignment.State.CURRENT
    )
    assert sorted(bulk.values_list("tag__name", flat=True)) == ["a", "c"]
