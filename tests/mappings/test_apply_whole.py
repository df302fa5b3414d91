"""A first apply writes its new sets whole, set-based, with one undo record per set
(`OperationSet`); undo drops those sets, keeps later edits, and leaves rows, counters and
effective tags exactly as they were (docs/tags.md#operations-and-undo)."""

from __future__ import annotations

import pytest

from apps.mappings.services.apply import mapping_apply, mapping_undo
from apps.tags import slots
from apps.tags.models import Operation, OperationChange, OperationSet, Tag, TagAssignment, TagSet
from apps.tags.selectors import operation_item_ids
from apps.tags.services import operations as ops
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write
from apps.tags.services.assignments_sets import SET_COLUMNS, sets_create_filled
from apps.tags.services.effective import rules_current
from apps.tags.services.names import vocabulary_default
from apps.tags.services.sql import int_rows_insert
from tests.mappings.factories import profile_make, set_make, vocabulary_make
from tests.tags.factories import library
from tests.tags.snapshots import assert_no_drift, effective_names, snapshot

pytestmark = pytest.mark.django_db
DERIVED = TagSet.Kind.DERIVED


@pytest.fixture
def world(curator):
    danbooru = vocabulary_default()
    e621 = vocabulary_make("e621")
    # Items with a curated set (their derived sets do not reach effective tags) and without one
    # (their derived sets do: docs/tags.md#effective-tags).
    curated = library(3, curated=("a", "b"), source=("a", "b", "c"))
    plain = library(2, curated=None, source=("a", "c"))
    mapping = set_make(danbooru, e621, [("a", "x"), ("b", ["y", "z"]), ("c", "x")])
    profile = profile_make(e621, [mapping], input_scope="effective", unmapped_policy="drop")
    assert_no_drift()
    return {"ids": [i.pk for i in [*curated, *plain]], "plain": plain, "profile": profile, "actor": curator}


def _derived(item_id, profile):
    return dict(
        TagAssignment.objects.filter(
            media_item_id=item_id, tagset__slot=slots.mapping(profile.pk), state=TagAssignment.State.CURRENT
        ).values_list("tag__name", "position")
    )


def test_a_first_apply_logs_one_record_per_set_and_undo_restores_everything(world):
    before = snapshot()
    outcome = mapping_apply(profile=world["profile"], ids=world["ids"], actor=world["actor"])
    operation = outcome.operation
    assert OperationSet.objects.filter(operation=operation).count() == 5
    assert not OperationChange.objects.filter(operation=operation).exists()
    assert _derived(world["ids"][0], world["profile"]) == {"x": 0, "y": 1, "z": 2}
    assert "x" in effective_names(world["plain"][0])  # counts where there is no curated set
    assert operation.counters["sets_created"] == 5
    assert operation_item_ids(operation=operation) == sorted(world["ids"])  # the operation's page
    assert operation.counters["changes"] == 3 * 3 + 2 * 1
    assert_no_drift()
    undo = mapping_undo(operation=operation, actor=world["actor"])
    assert undo.counters["sets_removed"] == 5
    assert undo.counters["conflicts"] == 0
    assert snapshot() == before
    assert_no_drift()
    redo = ops.operation_undo(operation=undo, actor=world["actor"]).operation
    assert redo.counters["reapplied_items"] == 5
    assert _derived(world["ids"][0], world["profile"]) == {"x": 0, "y": 1, "z": 2}
    assert_no_drift()


def test_undo_keeps_a_later_edit_in_a_set_the_apply_created(world):
    outcome = mapping_apply(profile=world["profile"], ids=world["ids"], actor=world["actor"])
    first = world["ids"][0]
    preview = ops.operation_preview(
        action="remove",
        tags=["y"],
        ids=[first],
        set_kind="derived",
        vocabulary=world["profile"].target_vocabulary,
        actor=world["actor"],
    )
    ops.operation_apply(operation=preview.operation, actor=world["actor"])
    undo = mapping_undo(operation=outcome.operation, actor=world["actor"])
    assert undo.status == Operation.Status.APPLIED
    assert undo.counters["conflicts"] == 1
    assert undo.counters["sets_removed"] == 4
    kept = TagSet.objects.get(media_item_id=first, slot=slots.mapping(world["profile"].pk))
    rows = TagAssignment.objects.filter(tagset=kept).values_list("tag__name", "state")
    assert list(rows) == [("y", TagAssignment.State.DELETED)]  # the later removal wins
    assert kept.assignment_count == 0
    assert_no_drift()


def test_the_whole_set_writer_writes_what_the_row_writer_writes(world):
    """Differential: the same new sets through `sets_create_filled` and through
    `assignments_write`'s transitions leave the same rows, set counts, effective tags and
    counters; both undo back to the start."""
    e621 = world["profile"].target_vocabulary
    tags = dict(Tag.objects.filter(vocabulary=e621).values_list("name", "pk"))
    outputs = {i: [tags["x"], tags["y"]] if n % 2 else [tags["z"]] for n, i in enumerate(world["ids"])}
    start = snapshot()
    rules = rules_current()

    def operation():
        return Operation.objects.create(
            kind=Operation.Kind.MAP, status=Operation.Status.APPLIED, set_kind=DERIVED
        )

    whole = operation()
    sets_create_filled(
        outputs,
        kind=DERIVED,
        vocabulary_id=e621.pk,
        slot="profile:99",
        origin_label="test",
        via=TagAssignment.Via.MAPPING,
        operation_id=whole.pk,
        actor_id=None,
        rules=rules,
    )
    by_whole = snapshot()
    assert_no_drift()
    ops.operation_undo(operation=whole)
    assert snapshot() == start

    by_rows_op = operation()
    made = TagSet.objects.bulk_create(
        [
            TagSet(media_item_id=i, kind=DERIVED, vocabulary=e621, slot="profile:99", origin_label="test")
            for i in outputs
        ]
    )
    sets = (
        {s.media_item_id: s.pk for s in made}
        if all(s.pk for s in made)
        else dict(TagSet.objects.filter(slot="profile:99").values_list("media_item_id", "pk"))
    )
    assignments_write(
        [
            Transition(sets[i], tag_id, i, ABSENT, CURRENT, position=n, via=TagAssignment.Via.MAPPING)
            for i, tag_ids in outputs.items()
            for n, tag_id in enumerate(tag_ids)
        ],
        kind=DERIVED,
        operation_id=by_rows_op.pk,
        actor_id=None,
        rules=rules,
    )
    assert snapshot() == by_whole


def test_int_rows_insert_writes_constants_and_integers():
    from apps.media.models import MediaItem
    from tests.tags.factories import items_make

    items = items_make(3)
    target = vocabulary_make("t2")
    written = int_rows_insert(
        TagSet,
        SET_COLUMNS,
        (
            (
                "2026-01-01 00:00:00",
                "2026-01-01 00:00:00",
                None,
                DERIVED,
                target.pk,
                "profile:1",
                "50% off",
                "",
                "",
                1000,
                None,
                1,
                None,
            ),
            (2, 10),
        ),
        ((i.pk, n) for n, i in enumerate(items)),
        batch=2,
    )
    assert written == 3
    rows = TagSet.objects.filter(slot="profile:1").order_by("media_item_id")
    assert [(s.media_item_id, s.assignment_count, s.origin_label) for s in rows] == [
        (i.pk, n, "50% off") for n, i in enumerate(items)
    ]
    assert MediaItem.objects.count() == 3
    with pytest.raises(ValueError, match="not a plain constant"):
        int_rows_insert(TagSet, ("slot",), (("it's",), ()), [()])
