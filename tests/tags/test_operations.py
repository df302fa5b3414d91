"""Bulk tag operations: counts, apply, undo, redo, job path, query budget, drift.

docs/tags.md#bulk-operations
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError, ForbiddenError, UnprocessableError
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.tags.models import (
    Operation,
    OperationChange,
    OperationTarget,
    Tag,
    TagAlias,
    TagAssignment,
    TagSet,
    TagStat,
)
from apps.tags.services import operations as ops
from apps.tags.services import tag_set_edit, tag_set_promote
from tests.tags.factories import items_make, library
from tests.tags.snapshots import assert_no_drift, comparable, curated_names, effective_names, snapshot

pytestmark = pytest.mark.django_db

C, S, TG = TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.TAGGER


# --- helpers ------------------------------------------------------------------------------------


def run(
    action: str, items: Sequence[MediaItem], actor: Any = None, **kwargs: Any
) -> tuple[ops.Preview, Operation]:
    """Preview then apply on these items; returns the preview and the applied operation."""
    preview = ops.operation_preview(action=action, ids=[i.pk for i in items], actor=actor, **kwargs)
    outcome = ops.operation_apply(operation=preview.operation, actor=actor)
    return preview, outcome.operation


# --- each kind: preview counts equal applied counts (check 22) ---------------------------------


def test_add_counts_equal_applied_counts_and_tags_land_at_the_end(curator):
    items = library(3, curated=["cat", "sky"])
    preview, op = run("add", items, curator, tags=["dog", "cat"])
    assert preview.counts["tags"]["dog"]["added"] == 3
    assert preview.counts["tags"]["cat"]["unchanged"] == 3
    assert comparable(op.counters) == comparable(preview.counts)
    assert op.status == Operation.Status.APPLIED
    assert op.counters["items_changing"] == 3
    assert curated_names(items[0]) == ["cat", "sky", "dog"]
    row = TagAssignment.objects.get(media_item=items[0], kind=C, tag__name="dog")
    assert (row.added_via, row.operation_id, row.actor_id) == ("bulk", op.pk, curator.pk)
    assert "dog" in effective_names(items[0])
    assert TagStat.objects.get(tag__name="dog", set_kind=C).current_count == 3
    assert Tag.objects.get(name="dog").media_count == 3
    assert OperationChange.objects.filter(operation=op).count() == 3
    assert_no_drift()


def test_add_revives_tombstones_unless_told_not_to(curator):
    items = library(2, curated=["cat"], tombstoned=["dog"])
    blocked, op = run("add", items, curator, tags=["dog"], revive_tombstones=False)
    assert blocked.counts["tags"]["dog"] == {
        "added": 0, "removed": 0, "unchanged": 0, "blocked_by_tombstone": 2, "revived": 0
    }  # fmt: skip
    assert comparable(op.counters) == comparable(blocked.counts)
    assert curated_names(items[0]) == ["cat"]
    revived, op = run("add", items, curator, tags=["dog"])
    assert revived.counts["tags"]["dog"]["revived"] == 2
    assert comparable(op.counters) == comparable(revived.counts)
    assert curated_names(items[0]) == ["cat", "dog"]
    assert TagAssignment.objects.get(media_item=items[0], tag__name="dog").added_via == "bulk"
    assert_no_drift()


def test_add_seeds_curated_sets_only_on_items_that_change(curator):
    plain = library(2, curated=None, source=["cat", "sky"], tagger={"robot": 9000})
    full = library(1, curated=None, source=["dog"])
    preview, op = run("add", [*plain, *full], curator, tags=["dog"])
    assert preview.counts["sets_created"] == 2
    assert preview.counts["seeded"] == 4
    assert preview.counts["items_changing"] == 2
    assert preview.counts["changes"] == 6
    assert comparable(op.counters) == comparable(preview.counts)
    assert curated_names(plain[0]) == ["cat", "sky", "dog"]
    assert not TagSet.objects.filter(media_item=full[0], kind=C).exists()
    seeded = TagAssignment.objects.get(media_item=plain[0], kind=C, tag__name="cat")
    assert seeded.added_via == "promote"
    assert seeded.origin_set.kind == S
    assert "robot" not in effective_names(plain[0])  # tagger output is never copied in silently
    assert_no_drift()


def test_remove_tombstones_in_curated_sets_and_unseeded_items(curator):
    with_set = library(2, curated=["cat", "sky"])
    without = library(1, curated=None, source=["cat", "dog"])
    preview, op = run("remove", [*with_set, *without], curator, tags=["cat", "nothing_such"])
    assert preview.counts["tags"]["cat"]["removed"] == 3
    assert preview.counts["sets_created"] == 1
    assert any(w["code"] == "tags.unknown_tag" for w in preview.warnings)
    assert comparable(op.counters) == comparable(preview.counts)
    assert curated_names(with_set[0]) == ["sky"]
    assert curated_names(with_set[0], state=0) == ["cat"]
    assert curated_names(without[0]) == ["dog"]
    assert curated_names(without[0], state=0) == ["cat"]
    assert effective_names(without[0]) == {"dog"}
    assert_no_drift()


def test_remove_by_pattern_takes_every_matching_tag(curator):
    items = library(3, curated=["white_background", "simple_background", "cat", "background_art"])
    preview, op = run("remove", items, curator, tags=["*_background", "cat"])
    assert set(preview.counts["tags"]) == {"white_background", "simple_background", "cat"}
    assert op.counters["tags"]["white_background"]["removed"] == 3
    assert curated_names(items[0]) == ["background_art"]
    overlapping = ops.operation_preview(
        action="remove", tags=["*_art", "background_*", "background_art"], ids=[items[1].pk], actor=curator
    )
    assert overlapping.counts["tags"]["background_art"]["removed"] == 1
    assert [r[0] for r in overlapping.operation.params["spec"]["remove"]] == ["background_art"]
    none = ops.operation_preview(action="remove", tags=["zzz*"], ids=[items[0].pk], actor=curator)
    assert [w["code"] for w in none.warnings][:1] == ["tags.unknown_tag"]
    assert none.counts["changes"] == 0


def test_remove_pattern_that_names_everything_or_too_much_is_refused(curator, monkeypatch):
    from apps.tags.services.operations import plan as operations_plan

    items = library(1, curated=["a_1", "a_2", "a_3"])
    with pytest.raises(DomainError) as info:
        ops.operation_preview(action="remove", tags=["**"], ids=[items[0].pk], actor=curator)
    assert info.value.code == "tags.bulk_invalid"
    monkeypatch.setattr(operations_plan, "PATTERN_MAX_TAGS", 2)
    with pytest.raises(DomainError) as info:
        ops.operation_preview(action="remove", tags=["a_*"], ids=[items[0].pk], actor=curator)
    assert info.value.code == "tags.pattern_too_broad"
    assert "more than 2 tags" in info.value.message
    assert Operation.objects.count() == 0


def test_remove_from_tagger_sets_only(curator):
    items = library(2, curated=None, source=["sky"], tagger={"robot": 9000, "cat": 9000})
    preview, op = run("remove", items, curator, tags=["robot"], set_kind="tagger")
    assert preview.counts["tags"]["robot"]["removed"] == 2
    assert preview.counts["sets_created"] == 0
    assert comparable(op.counters) == comparable(preview.counts)
    assert effective_names(items[0]) == {"sky", "cat"}
    assert TagAssignment.objects.get(media_item=items[0], kind=TG, tag__name="robot").state == 0
    with pytest.raises(DomainError, match="only 'remove'"):
        ops.operation_preview(action="add", tags=["x"], ids=[items[0].pk], set_kind="tagger")
    assert_no_drift()


def test_replace_tombstones_from_and_appends_to(curator):
    items = library(2, curated=["cat", "sky", "tree"])
    other = library(1, curated=["sky"])
    preview, op = run("replace", [*items, *other], curator, from_tags=["cat", "tree"], to_tags=["dog", "sky"])
    counts = preview.counts
    assert counts["matched_items"] == 3
    assert counts["items_changing"] == 2
    assert counts["tags"]["dog"]["added"] == 2
    assert counts["tags"]["sky"]["unchanged"] == 2
    assert counts["tags"]["cat"]["removed"] == 2
    assert comparable(op.counters) == comparable(counts)
    assert curated_names(items[0]) == ["sky", "dog"]
    assert curated_names(other[0]) == ["sky"]
    with pytest.raises(DomainError, match="replaced by itself"):
        ops.operation_preview(action="replace", from_tags=["sky"], to_tags=["sky"], ids=[items[0].pk])
    assert_no_drift()


def test_rename_takes_position_and_origin_of_the_old_tag(curator):
    items = library(2, curated=None, source=["alpha", "cat", "zeta"])
    preview, op = run("rename", items, curator, from_tags=["cat"], to_tags=["kitty"])
    assert comparable(op.counters) == comparable(preview.counts)
    assert curated_names(items[0]) == ["alpha", "kitty", "zeta"]
    kitty = TagAssignment.objects.get(media_item=items[0], kind=C, tag__name="kitty")
    cat = TagAssignment.objects.get(media_item=items[0], kind=C, tag__name="cat")
    assert (kitty.position, kitty.origin_set_id, cat.state) == (cat.position, cat.origin_set_id, 0)
    with pytest.raises(DomainError, match="no tag"):
        ops.operation_preview(action="rename", from_tags=["nope"], to_tags=["x"], ids=[items[0].pk])
    assert_no_drift()


def test_rename_across_the_library_aliases_deprecates_and_undo_reverts(curator, viewer):
    items = library(3, curated=["cat", "sky"])
    with pytest.raises(ForbiddenError):
        ops.operation_preview(
            action="rename", from_tags=["cat"], to_tags=["kitty"], scope="library", actor=viewer
        )
    preview = ops.operation_preview(
        action="rename", from_tags=["cat"], to_tags=["kitty"], scope="library", actor=curator
    )
    assert preview.counts["matched_items"] == 3  # no q or ids: every item with the old tag
    op = ops.operation_apply(operation=preview.operation, actor=curator).operation
    alias = TagAlias.objects.get(antecedent__name="cat")
    assert alias.status == "active"
    assert Tag.objects.get(name="cat").is_deprecated
    assert curated_names(items[0]) == ["kitty", "sky"]
    undo = ops.operation_undo(operation=op, actor=curator).operation
    alias.refresh_from_db()
    assert alias.status == "retired"
    assert not Tag.objects.get(name="cat").is_deprecated
    assert curated_names(items[0]) == ["cat", "sky"]
    assert undo.params["effects"]["alias_retired"] == alias.pk


def test_set_type_is_logged_and_undone(curator):
    library(1, curated=["saber"])
    preview = ops.operation_preview(action="set_type", tags=["saber"], type_key="character", actor=curator)
    assert preview.counts["tags_changing"] == 1
    assert preview.operation.kind == "set_type"
    op = ops.operation_apply(operation=preview.operation, actor=curator).operation
    assert Tag.objects.get(name="saber").type.key == "character"
    assert op.status == "applied"
    undo = ops.operation_undo(operation=op, actor=curator).operation
    assert Tag.objects.get(name="saber").type.key == "general"
    assert undo.counters["restored"] == 1
    op.refresh_from_db()
    assert op.status == "undone"
    assert op.undone_by_id == undo.pk


# --- undo and redo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        ("add", {"tags": ["dog", "cat"]}),
        ("remove", {"tags": ["cat"]}),
        ("replace", {"from_tags": ["cat"], "to_tags": ["dog", "tree"]}),
        ("rename", {"from_tags": ["sky"], "to_tags": ["blue_sky"]}),
    ],
)
def test_undo_restores_assignments_effective_tags_and_counters_exactly(curator, action, kwargs):
    curated = library(3, curated=["cat", "sky"], tombstoned=["dog"])
    plain = library(2, curated=None, source=["cat", "sky"], tagger={"robot": 9000})
    before = snapshot()
    _preview, op = run(action, [*curated, *plain], curator, **kwargs)
    assert snapshot() != before
    undo = ops.operation_undo(operation=op, actor=curator).operation
    assert undo.kind == "undo"
    assert undo.status == "applied"
    assert undo.counters["conflicts"] == 0
    assert snapshot() == before
    op.refresh_from_db()
    assert op.status == "undone"
    assert op.undone_by_id == undo.pk
    assert_no_drift()


def test_undo_after_a_later_edit_reports_the_conflict_and_keeps_the_edit(curator):
    items = library(3, curated=["cat"])
    _preview, op = run("add", items, curator, tags=["dog", "sun"])
    curated_set = TagSet.objects.get(media_item=items[0], kind=C)
    tag_set_edit(tag_set=curated_set, remove=["dog"], actor=curator)  # a later edit to the same item
    later = TagSet.objects.get(media_item=items[1], kind=C)
    tag_set_edit(tag_set=later, remove=["sun"], actor=curator)
    tag_set_edit(tag_set=later, add=["sun"], actor=curator)  # back to current, but by someone else
    undo = ops.operation_undo(operation=op, actor=curator).operation
    assert undo.counters["conflicts"] == 2
    assert undo.counters["restored"] == 4
    assert {(c["item"], c["now"]) for c in undo.counters["conflict_samples"]} == {
        (items[0].pk, "deleted"),
        (items[1].pk, "current"),
    }
    assert curated_names(items[0]) == ["cat"]
    assert curated_names(items[0], state=0) == ["dog"]
    assert curated_names(items[1]) == ["cat", "sun"]  # the later add wins
    assert curated_names(items[2]) == ["cat"]
    assert not TagAssignment.objects.filter(media_item=items[2], tag__name="dog").exists()
    assert_no_drift()


def test_redo_is_the_undo_of_the_undo_and_recreates_dropped_sets(curator):
    curated = library(2, curated=["cat"])
    plain = library(2, curated=None, source=["cat", "sky"])
    before = snapshot()
    _preview, op = run("add", [*curated, *plain], curator, tags=["dog"])
    after = snapshot()
    undo = ops.operation_undo(operation=op, actor=curator).operation
    assert undo.counters["sets_removed"] == 2
    assert snapshot() == before
    assert not TagSet.objects.filter(media_item__in=plain, kind=C).exists()
    redo = ops.operation_undo(operation=undo, actor=curator).operation
    assert redo.counters["reapplied_items"] == 2
    assert redo.counters["conflicts"] == 0
    assert snapshot() == after
    undo.refresh_from_db()
    assert undo.status == "undone"
    assert undo.undone_by_id == redo.pk
    again = ops.operation_undo(operation=redo, actor=curator).operation
    assert again.counters["conflicts"] == 0
    assert snapshot() == before
    with pytest.raises(ConflictError, match="already undone"):
        ops.operation_undo(operation=op, actor=curator)
    assert_no_drift()


def test_undo_of_a_single_set_edit_uses_the_same_log(curator):
    items = library(1, curated=["cat"])
    before = snapshot()
    edit = tag_set_edit(tag_set=TagSet.objects.get(media_item=items[0], kind=C), add=["dog"], remove=["cat"])
    undo = ops.operation_undo(operation=edit, actor=curator).operation
    assert undo.counters["restored"] == 2
    after = snapshot()
    assert after["assignments"] == before["assignments"]
    assert after["effective"] == before["effective"]


def test_undo_refusals(curator, settings):
    items = library(1, curated=["cat"])
    preview = ops.operation_preview(action="add", tags=["dog"], ids=[items[0].pk], actor=curator)
    with pytest.raises(ConflictError, match="only applied"):
        ops.operation_undo(operation=preview.operation)
    op = ops.operation_apply(operation=preview.operation, actor=curator).operation
    with pytest.raises(ConflictError, match="only a preview"):
        ops.operation_apply(operation=op)
    Operation.objects.filter(pk=op.pk).update(created_at=timezone.now() - timedelta(days=91))
    op.refresh_from_db()
    with pytest.raises(ConflictError, match="older than 90 days") as refused:
        ops.operation_undo(operation=op)
    assert refused.value.code == "tags.undo_expired"
    rule = Operation.objects.create(kind="rule_change", status="applied")
    with pytest.raises(UnprocessableError):
        ops.operation_undo(operation=rule)
    stale = ops.operation_preview(action="add", tags=["dog"], ids=[items[0].pk])
    Operation.objects.filter(pk=stale.operation.pk).update(created_at=timezone.now() - timedelta(hours=25))
    stale.operation.refresh_from_db()
    with pytest.raises(ConflictError, match="preview again"):
        ops.operation_apply(operation=stale.operation)


def test_tombstone_blocks_promote_but_bulk_add_revives_it(curator):
    """Tombstones with bulk operations: remove x → promote reports blocked → bulk add revives.

    docs/tags.md#tombstones
    """
    items = library(1, curated=["cat", "x"], tagger={"x": 9900})
    run("remove", items, curator, tags=["x"])
    tagger_set = TagSet.objects.get(media_item=items[0], kind=TG)
    assert tag_set_promote(source_set=tagger_set, actor=curator)["blocked_by_tombstone"] == ["x"]
    assert curated_names(items[0]) == ["cat"]
    preview, _op = run("add", items, curator, tags=["x"])
    assert preview.counts["tags"]["x"]["revived"] == 1
    row = TagAssignment.objects.get(media_item=items[0], kind=C, tag__name="x")
    assert (row.state, row.added_via) == (1, "bulk")
    assert tag_set_promote(source_set=tagger_set, actor=curator)["blocked_by_tombstone"] == []
    blocked = ops.operation_preview(action="add", tags=["cat"], ids=[items[0].pk], revive_tombstones=False)
    assert blocked.counts["tags"]["cat"]["unchanged"] == 1


# --- targets --------------------------------------------------------------------------------------


def test_target_needs_items_and_has_a_ceiling(settings):
    with pytest.raises(DomainError, match="Choose the items"):
        ops.operation_target_ids()
    settings.BULK_MAX_TARGET = 2
    items = items_make(3)
    with pytest.raises(UnprocessableError) as too_many:
        ops.operation_target_ids(ids=[i.pk for i in items])
    assert too_many.value.code == "tags.target_too_large"
    assert ops.operation_target_ids(ids=[items[0].pk, 999_999_999]) == [items[0].pk]


def test_target_by_query_goes_through_search(curator):
    items = library(3, curated=["cat"])
    library(2, curated=["dog"])
    assert ops.operation_target_ids(q="cat", viewer=curator) == [i.pk for i in items]
    assert ops.operation_target_ids(q="cat", ids=[items[0].pk, items[1].pk], viewer=curator) == [
        items[0].pk,
        items[1].pk,
    ]


# --- sync vs job path -----------------------------------------------------------------------------


class _Sent:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((name, kwargs))


@pytest.fixture
def sent(monkeypatch) -> _Sent:
    """Tasks the services enqueue (on commit), captured instead of sent to a broker."""
    from apps.jobs import services

    recorder = _Sent()
    monkeypatch.setattr(services.current_app, "send_task", recorder)
    return recorder


def test_large_operations_run_as_a_resumable_job(curator, settings, sent, django_capture_on_commit_callbacks):
    settings.BULK_SYNC_MAX_CHANGES = 5
    settings.BULK_CHUNK_ITEMS = 4
    items = library(10, curated=["cat"])
    preview = ops.operation_preview(action="add", tags=["dog"], ids=[i.pk for i in items], actor=curator)
    assert preview.mode == "job"
    with django_capture_on_commit_callbacks(execute=True):
        outcome = ops.operation_apply(operation=preview.operation, actor=curator)
    assert outcome.job is not None
    assert outcome.operation.status == "queued"
    assert sent.calls == [("tags.operation_run", {"job_id": outcome.job.pk})]
    assert not TagAssignment.objects.filter(tag__name="dog").exists()
    ops.operation_run(job_id=outcome.job.pk)
    op = Operation.objects.get(pk=preview.operation.pk)
    job = Job.objects.get(pk=outcome.job.pk)
    assert (op.status, job.status, job.progress_done) == ("applied", "succeeded", 10)
    assert op.resume_cursor == items[-1].pk
    assert comparable(op.counters) == comparable(preview.counts)
    assert TagAssignment.objects.filter(tag__name="dog", state=1).count() == 10
    ops.operation_run(job_id=outcome.job.pk)  # a redelivered message does nothing
    assert OperationChange.objects.filter(operation=op).count() == 10
    assert_no_drift()


def test_job_resumes_at_its_cursor_and_cancel_keeps_done_chunks_undoable(curator, settings, sent):
    settings.BULK_SYNC_MAX_CHANGES = 0
    settings.BULK_CHUNK_ITEMS = 3
    items = library(7, curated=["cat"])
    before = snapshot()
    preview = ops.operation_preview(action="add", tags=["dog"], ids=[i.pk for i in items], actor=curator)
    outcome = ops.operation_apply(operation=preview.operation, actor=curator)
    assert outcome.job is not None
    # A worker died after the first chunk: its transaction committed the chunk and the cursor.
    from apps.tags.services.operations.run import _step

    _step(preview.operation.pk, curator.pk, None)
    Job.objects.filter(pk=outcome.job.pk).update(cancel_requested=False)
    ops.operation_run(job_id=outcome.job.pk)
    op = Operation.objects.get(pk=preview.operation.pk)
    assert op.status == "applied"
    assert OperationChange.objects.filter(operation=op).count() == 7
    assert op.counters["items_done"] == 7
    # Cancel: an undo job stops after its current chunk; what it did stays and can be undone.
    undo = ops.operation_undo(operation=op, actor=curator)
    assert undo.job is not None
    Job.objects.filter(pk=undo.job.pk).update(cancel_requested=True)
    ops.operation_run(job_id=undo.job.pk)
    assert Job.objects.get(pk=undo.job.pk).status == "cancelled"
    assert Operation.objects.get(pk=undo.operation.pk).status in ("cancelled", "queued")
    settings.BULK_SYNC_MAX_CHANGES = 10_000
    Operation.objects.filter(pk=undo.operation.pk).update(status="failed")
    again = ops.operation_undo(operation=op, actor=curator).operation
    assert again.status == "applied"
    assert snapshot() == before


# --- set-based: bounded statements ----------------------------------------------------------------


def _statements_for(n: int, django_assert_max_num_queries: Any, budget: int) -> tuple[int, int]:
    """(all statements, statements other than INSERTs) of applying `add` to n curated items."""
    items = library(n, curated=["cat", "sky"])
    preview = ops.operation_preview(action="add", tags=["dog", "sun"], ids=[i.pk for i in items])
    with django_assert_max_num_queries(budget) as captured:
        op = ops.operation_apply(operation=preview.operation).operation
    assert op.counters["changes"] == 2 * n
    sqls = [q["sql"] for q in captured.captured_queries]
    return len(sqls), len([s for s in sqls if not s.startswith("INSERT")])


@pytest.mark.slow
def test_apply_statements_do_not_grow_with_items(settings, django_assert_max_num_queries):
    """2,000 items in two chunks of 1,000 take twice the statements of 200 items in one chunk.

    SQLite caps a statement at 999 parameters, so there bulk INSERTs split into batches of
    ~70 rows; every other statement (and on MariaDB every statement) is per chunk.
    """
    settings.BULK_CHUNK_ITEMS = 1000
    small, small_other = _statements_for(200, django_assert_max_num_queries, 80)
    large, large_other = _statements_for(2000, django_assert_max_num_queries, 260)
    assert large_other <= 2 * small_other + 5
    if connection.vendor == "mysql":
        assert large <= 2 * small + 5


# --- counters: no drift after a random sequence (check 21) ----------------------------------------


@pytest.mark.slow
def test_random_edits_bulk_ops_and_undos_leave_no_drift(curator):
    rng = random.Random(21)
    names = [f"t{i}" for i in range(8)]
    items = library(12, curated=["t0", "t1"]) + library(8, curated=None, source=["t2", "t3"])
    applied: list[Operation] = []
    for step in range(200):
        choice = rng.random()
        chosen = rng.sample(items, rng.randint(1, 8))
        if choice < 0.25:
            tag_set = TagSet.objects.filter(media_item=rng.choice(items), kind=C).first()
            if tag_set is not None:
                tag_set_edit(
                    tag_set=tag_set, add=rng.sample(names, 2), remove=rng.sample(names, 1), actor=curator
                )
        elif choice < 0.75:
            action = rng.choice(["add", "remove", "replace", "rename"])
            a, b = rng.sample(names, 2)
            kwargs: dict[str, Any] = (
                {"tags": [a, b]} if action in ("add", "remove") else {"from_tags": [a], "to_tags": [b]}
            )
            try:
                preview, op = run(action, chosen, curator, revive_tombstones=rng.random() < 0.8, **kwargs)
            except DomainError:
                continue  # e.g. renaming a tag nobody has yet
            assert comparable(op.counters) == comparable(preview.counts), (step, action, kwargs)
            applied.append(op)
        elif applied:
            target = rng.choice(applied)
            target.refresh_from_db()
            if ops.operation_can_undo(target):
                applied.append(ops.operation_undo(operation=target, actor=curator).operation)
    assert_no_drift()


# --- housekeeping and the task adapter -------------------------------------------------------------


def test_expiry_drops_old_previews_and_old_change_logs(curator):
    items = library(1, curated=["cat"])
    stale = ops.operation_preview(action="add", tags=["dog"], ids=[items[0].pk]).operation
    _preview, old = run("add", items, curator, tags=["sun"])
    _preview, fresh = run("add", items, curator, tags=["moon"])
    Operation.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=25))
    Operation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    result = ops.operations_expire()
    assert result["previews"] == 1
    assert result["changes"] == 1
    assert result["targets"] == 1
    assert not Operation.objects.filter(pk=stale.pk).exists()
    assert Operation.objects.filter(pk=old.pk).exists()  # history stays, its log is gone
    assert OperationChange.objects.filter(operation=fresh).count() == 1
    assert OperationTarget.objects.filter(operation=fresh).count() == 1


def test_task_adapter_delegates_and_skips_a_claimed_job(curator, settings, sent):
    from apps.tags.tasks import operation_run_task

    settings.BULK_SYNC_MAX_CHANGES = 0
    items = library(2, curated=["cat"])
    _preview, outcome = ops.operation_bulk(
        action="add", tags=["dog"], ids=[i.pk for i in items], dry_run=False
    )
    assert outcome is not None
    assert outcome.job is not None
    Job.objects.filter(pk=outcome.job.pk).update(status="running")  # another delivery owns it
    operation_run_task(job_id=outcome.job.pk)
    assert Operation.objects.get(pk=outcome.operation.pk).status == "queued"
    Job.objects.filter(pk=outcome.job.pk).update(status="queued")
    operation_run_task(job_id=outcome.job.pk)
    assert Operation.objects.get(pk=outcome.operation.pk).status == "applied"


def test_a_type_prefix_in_a_bulk_add_types_the_tag_as_the_editor_does(curator):
    from apps.core.exceptions import DomainError as Refused
    from apps.tags.models import Tag

    items = library(2, curated=["cat"])
    run("add", items, curator, tags=["char:saber", "char:cat"])
    assert Tag.objects.get(name="saber").type.key == "character"  # a new tag takes the prefix's type
    assert Tag.objects.get(name="cat").type.key == "character"  # a general one is retyped
    assert curated_names(items[0]) == ["cat", "saber"]
    with pytest.raises(Refused) as conflict:  # saber is a character now, not a copyright
        ops.operation_preview(action="add", tags=["copy:saber"], ids=[items[0].pk], actor=curator)
    assert conflict.value.code == "tags.type_conflict"
