"""Curated edits, tombstones, provenance, aliases, implications and effective tags (docs/tags.md)."""

from __future__ import annotations

import pytest

from apps.core.exceptions import ConflictError, DomainError
from apps.media.models import MediaItem
from apps.tags.models import (
    EffectiveTag,
    OperationChange,
    Tag,
    TagAssignment,
    TagSet,
    TagStat,
)
from apps.tags.services import rules, tag_set_curated_get_or_create, tag_set_edit, tag_set_promote
from apps.tags.services.effective import counters_recount, effective_rebuild_all, effective_rebuild_stale
from tests.tags.factories import make_item, tagger_set_make

pytestmark = pytest.mark.django_db


def effective(item: MediaItem) -> dict[str, bool]:
    return {
        row.tag.name: row.is_implied
        for row in EffectiveTag.objects.filter(media_item=item).select_related("tag")
    }


def test_source_tags_are_effective_and_counted():
    item = make_item(["cat", "sky"])
    assert effective(item) == {"cat": False, "sky": False}
    item.refresh_from_db()
    assert item.tag_count == 2
    assert Tag.objects.get(name="cat").media_count == 1
    assert TagStat.objects.get(tag__name="cat", set_kind=TagSet.Kind.SOURCE).current_count == 1


def test_tagger_tags_count_only_above_the_threshold_and_never_over_curated():
    item = make_item(["cat"])
    tagger_set_make(item, {"smile": 9000, "blurry": 1200})
    assert effective(item) == {"cat": False, "smile": False}
    curated = tag_set_curated_get_or_create(media_item=item)
    tag_set_edit(tag_set=curated, add=["dog"])
    # With a curated set, only people's tags count: the tagger's smile no longer does.
    assert effective(item) == {"cat": False, "dog": False}


def test_curated_set_is_seeded_from_source_tags_with_provenance():
    item = make_item(["cat", "sky"])
    curated = tag_set_curated_get_or_create(media_item=item)
    rows = TagAssignment.objects.filter(tagset=curated).order_by("position")
    assert [r.tag.name for r in rows] == ["cat", "sky"]
    assert {r.added_via for r in rows} == {"promote"}
    assert all(r.origin_set_id for r in rows)


def test_edit_tombstones_and_promote_does_not_revive_but_a_person_does(curator):
    item = make_item(["cat", "x"])
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, remove=["x"], actor=curator)
    row = TagAssignment.objects.get(tagset=curated, tag__name="x")
    assert row.state == TagAssignment.State.DELETED  # a tombstone, not a deleted row
    tagger = tagger_set_make(item, {"x": 9900, "smile": 9000})
    result = tag_set_promote(source_set=tagger, actor=curator)
    assert result["blocked_by_tombstone"] == ["x"]
    assert result["added"] == ["smile"]
    assert TagAssignment.objects.get(tagset=curated, tag__name="x").state == TagAssignment.State.DELETED
    tag_set_edit(tag_set=curated, add=["x"], actor=curator)
    revived = TagAssignment.objects.get(tagset=curated, tag__name="x")
    assert (revived.state, revived.added_via) == (TagAssignment.State.CURRENT, "manual")
    promoted = TagAssignment.objects.get(tagset=curated, tag__name="smile")
    assert (promoted.added_via, promoted.origin_set_id) == ("promote", tagger.pk)


def test_every_edit_is_an_operation_with_changes():
    item = make_item([])
    curated = tag_set_curated_get_or_create(media_item=item)
    operation = tag_set_edit(tag_set=curated, replace=["a", "b"])
    changes = OperationChange.objects.filter(operation=operation)
    assert {(c.tag.name, c.before_state, c.after_state) for c in changes} == {("a", 2, 1), ("b", 2, 1)}
    assert all(row.operation_id == operation.pk for row in TagAssignment.objects.filter(tagset=curated))
    second = tag_set_edit(tag_set=curated, replace=["b", "c"])
    assert {
        (c.tag.name, c.before_state, c.after_state) for c in OperationChange.objects.filter(operation=second)
    } == {("a", 1, 0), ("c", 2, 1)}


def test_stale_row_version_is_a_conflict_never_an_overwrite():
    item = make_item([])
    curated = tag_set_curated_get_or_create(media_item=item)
    tag_set_edit(tag_set=curated, add=["a"], expected_version=curated.row_version)
    with pytest.raises(ConflictError) as err:
        tag_set_edit(tag_set=curated, add=["b"], expected_version=curated.row_version)  # the old version
    assert err.value.code == "tags.stale_version"
    assert not TagAssignment.objects.filter(tagset=curated, tag__name="b").exists()


def test_source_sets_are_read_only_and_deprecated_tags_are_refused():
    item = make_item(["cat"])
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    with pytest.raises(DomainError) as err:
        tag_set_edit(tag_set=source, add=["dog"])
    assert err.value.code == "tags.set_read_only"
    Tag.objects.filter(name="cat").update(is_deprecated=True)
    curated = tag_set_curated_get_or_create(media_item=item)
    with pytest.raises(DomainError) as err:
        tag_set_edit(tag_set=curated, add=["cat"])
    assert err.value.code == "tags.deprecated"


def test_alias_is_non_destructive_and_retiring_restores_effective_tags():
    item = make_item(["kitty", "sky"])
    before = effective(item)
    assignments = list(TagAssignment.objects.values_list("tagset_id", "tag_id", "state"))
    alias = rules.alias_create(antecedent="kitty", consequent="cat", activate=True)
    effective_rebuild_stale()
    assert effective(item) == {"cat": False, "sky": False}
    assert list(TagAssignment.objects.values_list("tagset_id", "tag_id", "state")) == assignments
    assert Tag.objects.get(name="cat").media_count == 1
    assert Tag.objects.get(name="kitty").media_count == 0
    rules.alias_retire(alias=alias)
    effective_rebuild_stale()
    assert effective(item) == before


def test_curated_writes_resolve_aliases_and_keep_what_was_typed():
    rules.alias_create(antecedent="kitty", consequent="cat", activate=True)
    item = make_item([])
    curated = tag_set_curated_get_or_create(media_item=item)
    tag_set_edit(tag_set=curated, add=["Kitty"])
    row = TagAssignment.objects.get(tagset=curated)
    assert (row.tag.name, row.entered_tag) == ("cat", "kitty")


def test_alias_chains_are_rejected_and_activation_repoints():
    a_b = rules.alias_create(antecedent="a", consequent="b", activate=True)
    rules.alias_create(antecedent="b", consequent="c", activate=True)
    a_b.refresh_from_db()
    assert a_b.consequent.name == "c"  # a→b became a→c
    with pytest.raises(DomainError) as err:
        rules.alias_create(antecedent="d", consequent="a", activate=True)
    assert err.value.code == "tags.alias_chain"


def test_implications_add_ancestors_refuse_cycles_with_the_path_and_redundancy():
    item = make_item(["car"])
    rules.implication_create(child="car", parent="vehicle", activate=True)
    rules.implication_create(child="vehicle", parent="object", activate=True)
    effective_rebuild_stale()
    assert effective(item) == {"car": False, "vehicle": True, "object": True}
    with pytest.raises(DomainError) as err:
        rules.implication_create(child="object", parent="car", activate=True)
    assert err.value.code == "tags.implication_cycle"
    assert err.value.details["path"] == ["object", "car", "vehicle", "object"]
    with pytest.raises(DomainError) as err:
        rules.implication_create(child="car", parent="object", activate=True)
    assert err.value.code == "tags.implication_redundant"


def test_retiring_an_implication_removes_what_it_implied():
    item = make_item(["car"])
    rule = rules.implication_create(child="car", parent="vehicle", activate=True)
    effective_rebuild_stale()
    rules.implication_retire(rule=rule)
    effective_rebuild_stale()
    assert effective(item) == {"car": False}
    assert Tag.objects.get(name="vehicle").media_count == 0


def test_full_rebuild_equals_incremental_state_and_counters_have_no_drift():
    items = [make_item(["a", "b"], seed=1), make_item(["b", "c"], seed=2), make_item(["c"], seed=3)]
    rules.implication_create(child="c", parent="d", activate=True)
    effective_rebuild_stale()
    curated = tag_set_curated_get_or_create(media_item=items[0])
    tag_set_edit(tag_set=curated, remove=["a"], add=["c"])
    snapshot = sorted(EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied"))
    effective_rebuild_all()
    assert sorted(EffectiveTag.objects.values_list("tag_id", "media_item_id", "is_implied")) == snapshot
    assert counters_recount() == {"tags_fixed": 0}


def test_implication_cycle_message_starts_with_the_new_rule_and_names_each_tag_once():
    rules.implication_create(child="blue_sky", parent="sky", activate=True)
    with pytest.raises(DomainError) as err:
        rules.implication_create(child="sky", parent="blue_sky", activate=True)
    assert err.value.code == "tags.implication_cycle"
    assert err.value.message.endswith("cycle: sky ⇒ blue_sky ⇒ sky.")
    assert err.value.details["path"] == ["sky", "blue_sky", "sky"]


def _stat(name: str, kind: int) -> int:
    row = TagStat.objects.filter(tag__name=name, set_kind=kind).first()
    return row.current_count if row else 0


def test_a_promotion_that_creates_the_curated_set_is_a_promote_operation_and_undoes(curator):
    from apps.tags.models import Operation
    from apps.tags.services.operations import operation_undo

    item = make_item(["cat", "sky"])
    tagger = tagger_set_make(item, {"smile": 9000})
    result = tag_set_promote(source_set=tagger, actor=curator)
    assert result["added"] == ["smile"]
    assert result["operation"] is not None
    operation = Operation.objects.get(pk=result["operation"])
    assert operation.kind == Operation.Kind.PROMOTE
    curated = TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED)
    assert OperationChange.objects.filter(operation=operation, tagset=curated).count() == 3  # seeds + smile
    assert effective(item) == {"cat": False, "sky": False, "smile": False}
    assert _stat("cat", TagSet.Kind.CURATED) == 1
    assert Operation.objects.filter(kind=Operation.Kind.PROMOTE).count() == 1
    assert not Operation.objects.filter(kind=Operation.Kind.EDIT).exists()

    undo = operation_undo(operation=operation, actor=curator).operation
    assert undo.status == Operation.Status.APPLIED
    assert not TagSet.objects.filter(media_item=item, kind=TagSet.Kind.CURATED).exists()
    # Back to what the item had: its source tags and the tagger's (no curated set any more).
    assert effective(item) == {"cat": False, "sky": False, "smile": False}
    assert _stat("cat", TagSet.Kind.CURATED) == 0
    assert _stat("smile", TagSet.Kind.CURATED) == 0


def test_promoting_a_source_set_into_a_new_curated_set_records_an_undoable_operation(curator):
    from apps.tags.models import Operation
    from apps.tags.services.operations import operation_undo

    item = make_item(["cat", "sky"])
    source = TagSet.objects.get(media_item=item, kind=TagSet.Kind.SOURCE)
    result = tag_set_promote(source_set=source, actor=curator)
    assert result["operation"] is not None  # the seeded set is the promotion's whole effect
    operation = Operation.objects.get(pk=result["operation"])
    assert operation.kind == Operation.Kind.PROMOTE
    operation_undo(operation=operation, actor=curator)
    assert not TagSet.objects.filter(media_item=item, kind=TagSet.Kind.CURATED).exists()
    assert _stat("cat", TagSet.Kind.CURATED) == 0


def test_a_promotion_into_an_existing_curated_set_is_logged_as_promote_and_undoes(curator):
    from apps.tags.models import Operation
    from apps.tags.services.operations import operation_undo

    item = make_item(["cat"])
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tagger = tagger_set_make(item, {"smile": 9000})
    result = tag_set_promote(source_set=tagger, actor=curator)
    operation = Operation.objects.get(pk=result["operation"])
    assert operation.kind == Operation.Kind.PROMOTE
    assert effective(item) == {"cat": False, "smile": False}
    operation_undo(operation=operation, actor=curator)
    assert set(
        TagAssignment.objects.filter(tagset=curated, state=TagAssignment.State.CURRENT).values_list(
            "tag__name", flat=True
        )
    ) == {"cat"}
    assert effective(item) == {"cat": False}


def _stats_now() -> dict[tuple[str, int], int]:
    return {
        (row.tag.name, row.set_kind): row.current_count
        for row in TagStat.objects.select_related("tag")
        if row.current_count
    }


def _stats_recounted() -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for name, kind in TagAssignment.objects.filter(state=TagAssignment.State.CURRENT).values_list(
        "tag__name", "kind"
    ):
        out[(name, kind)] = out.get((name, kind), 0) + 1
    return out


def test_deleting_an_item_takes_it_out_of_tag_counts_and_stats_at_once(curator):
    from apps.media.services import media_item_delete

    gone = make_item(["cat", "sky"], seed=1)
    kept = make_item(["cat"], seed=2)
    tagger_set_make(gone, {"smile": 9000})
    curated = tag_set_curated_get_or_create(media_item=gone, actor=curator)
    tag_set_edit(tag_set=curated, add=["dog"], remove=["sky"], actor=curator)
    rules.implication_create(child="dog", parent="animal", activate=True)
    effective_rebuild_stale()
    assert Tag.objects.get(name="cat").media_count == 2
    assert Tag.objects.get(name="animal").media_count == 1
    assert _stats_now() == _stats_recounted()

    media_item_delete(item=gone)

    counts = dict(Tag.objects.values_list("name", "media_count"))
    assert counts["cat"] == 1
    assert counts["dog"] == 0
    assert counts["animal"] == 0
    assert counts["smile"] == 0
    assert counters_recount() == {"tags_fixed": 0}  # nothing left for the nightly recount
    assert _stats_now() == _stats_recounted() == {("cat", TagSet.Kind.SOURCE): 1}
    assert effective(kept) == {"cat": False}


def test_the_rule_approval_policy_lives_in_the_service(curator):
    from django.contrib.auth.models import Permission, User

    from apps.core.exceptions import ForbiddenError
    from apps.tags.models import RuleStatus

    curator.groups.first().permissions.remove(Permission.objects.get(codename="approve_rules"))
    editor = User.objects.get(pk=curator.pk)
    proposal = rules.alias_create(antecedent="kitty", consequent="cat", actor=editor, activate=True)
    assert proposal.status == RuleStatus.PENDING  # an editor's proposal waits for an approver
    implication = rules.implication_create(child="cat", parent="animal", actor=editor, activate=True)
    assert implication.status == RuleStatus.PENDING
    with pytest.raises(ForbiddenError) as refused:
        rules.alias_activate(alias=proposal, actor=editor)
    assert refused.value.code == "tags.approve_rules_required"
    with pytest.raises(ForbiddenError):
        rules.implication_activate(rule=implication, actor=editor)
    assert rules.alias_activate(alias=proposal, actor=None).status == RuleStatus.ACTIVE  # the system may


def test_undoing_the_undo_of_a_set_creating_promotion_promotes_again(curator):
    from apps.tags.models import Operation
    from apps.tags.services.operations import operation_undo

    item = make_item(["cat", "sky"])
    tagger = tagger_set_make(item, {"smile": 9000})
    promoted = Operation.objects.get(pk=tag_set_promote(source_set=tagger, actor=curator)["operation"])
    undo = operation_undo(operation=promoted, actor=curator).operation
    assert not TagSet.objects.filter(media_item=item, kind=TagSet.Kind.CURATED).exists()
    redo = operation_undo(operation=undo, actor=curator).operation
    assert redo.status == Operation.Status.APPLIED
    curated = TagSet.objects.get(media_item=item, kind=TagSet.Kind.CURATED)
    current = TagAssignment.objects.filter(tagset=curated, state=TagAssignment.State.CURRENT)
    assert set(current.values_list("tag__name", flat=True)) == {"cat", "sky", "smile"}
    assert effective(item) == {"cat": False, "sky": False, "smile": False}
    assert _stat("smile", TagSet.Kind.CURATED) == 1
    assert redo.counters["reapplied_items"] == 1


def test_a_promotion_skips_a_tag_a_person_removed_even_when_an_alias_leads_to_it(curator):
    item = make_item(["cat"])
    curated = tag_set_curated_get_or_create(media_item=item, actor=curator)
    tag_set_edit(tag_set=curated, remove=["cat"], actor=curator)  # a tombstone
    rules.alias_create(antecedent="kitty", consequent="cat", activate=True)
    tagger = tagger_set_make(item, {"kitty": 9000})
    result = tag_set_promote(source_set=tagger, actor=curator)
    assert result["operation"] is None
    assert result["blocked_by_tombstone"] == ["cat"]
    row = TagAssignment.objects.get(tagset=curated, tag__name="cat")
    assert row.state == TagAssignment.State.DELETED
