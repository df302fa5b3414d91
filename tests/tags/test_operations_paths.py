"""The set-based SQL path of bulk operations against the per-item path: same rows, counters,
change log, effective tags and counts, and an exact undo, on a random library with aliases,
implications, tombstones, tagger sets and items without a curated set."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.tags.models import OperationChange, TagAssignment, TagSet
from apps.tags.services import assignments, effective
from apps.tags.services import operations as ops
from apps.tags.services.operations import apply as operations_exec
from tests.tags.factories import (
    alias_make,
    assign,
    closure_make,
    effective_build,
    items_make,
    stats_rebuild,
    tags_make,
)
from tests.tags.snapshots import assert_no_drift, comparable, snapshot

pytestmark = pytest.mark.django_db

C, S, TG = TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.TAGGER
POOL = [f"t{n:02d}" for n in range(14)]


def random_library(seed: int) -> list[Any]:
    """40 items: most with a curated set (some tombstones), all with a source set, some tagger
    output; t12 is an alias of t00, t01 implies t02 implies t03."""
    rng = random.Random(seed)
    # The rules cache is keyed by row counts and rule timestamps; these rules are bare
    # resolution and closure rows with the same counts in every test, so drop it.
    effective._cached = None
    items = items_make(40)
    tags = tags_make(POOL)
    alias_make(tags["t12"], tags["t00"])
    closure_make(
        [(tags["t01"], tags["t02"], 1), (tags["t02"], tags["t03"], 1), (tags["t01"], tags["t03"], 2)]
    )
    rows: list[Any] = []
    for n, item in enumerate(items):
        names = rng.sample(POOL, rng.randint(0, 7))
        if n % 5:  # every fifth item has no curated set (an operation seeds one)
            rows += [(item.pk, C, tags[name].pk, rng.choice([1, 1, 1, 0]), None) for name in names]
        rows += [(item.pk, S, tags[name].pk) for name in rng.sample(POOL, rng.randint(1, 5))]
        if n % 3 == 0:
            rows += [(item.pk, TG, tags[name].pk, 1, rng.randint(1000, 9999)) for name in rng.sample(POOL, 3)]
    assign(rows)
    for tagset_id in TagSet.objects.values_list("pk", flat=True):
        for position, pk in enumerate(
            TagAssignment.objects.filter(tagset_id=tagset_id)
            .order_by("tag_id")
            .values_list("tag_id", flat=True)
        ):
            TagAssignment.objects.filter(tagset_id=tagset_id, tag_id=pk).update(position=position)
    effective_build([i.pk for i in items])
    stats_rebuild()
    assignments.sets_recount(TagSet.objects.values_list("pk", flat=True))
    return items


def change_log(operation_id: int) -> list[tuple[Any, ...]]:
    """An operation's log, keyed by (item, kind) instead of set ids (seeded sets get new ids)."""
    sets = {s.pk: (s.media_item_id, s.kind) for s in TagSet.objects.all()}
    return sorted(
        (sets.get(tagset_id, ("gone",)), *rest)
        for tagset_id, *rest in OperationChange.objects.filter(operation_id=operation_id).values_list(
            "tagset_id",
            "tag_id",
            "media_item_id",
            "before_state",
            "after_state",
            "before_position",
            "before_via",
        )
    )


def apply_and_undo(items: list[Any], request: dict[str, Any], curator: Any) -> dict[str, Any]:
    base = snapshot()
    preview = ops.operation_preview(ids=[i.pk for i in items], actor=curator, **request)
    with CaptureQueriesContext(connection) as queries:
        applied = ops.operation_apply(operation=preview.operation, actor=curator).operation
    after = snapshot()
    log = change_log(applied.pk)
    assert_no_drift()
    assert snapshot() == after  # the full rebuild found nothing to fix
    undo = ops.operation_undo(operation=applied, actor=curator).operation
    assert snapshot() == base
    assert_no_drift()
    sql_statements = [q["sql"] for q in queries.captured_queries]
    return {
        "after": after,
        "log": log,
        "counters": comparable(applied.counters),
        "undo": {k: undo.counters.get(k) for k in ("restored", "conflicts", "changes")},
        "set_sql": any(s.startswith("INSERT INTO tags_operationchange") for s in sql_statements),
    }


REQUESTS = [
    {"action": "add", "tags": ["t05", "t01"]},
    {"action": "add", "tags": ["t07"], "revive_tombstones": False},
    {"action": "remove", "tags": ["t02", "t04"]},
    {"action": "replace", "from_tags": ["t06", "t08"], "to_tags": ["t01", "t09"]},
    {"action": "replace", "from_tags": ["t03"], "to_tags": ["t10"], "revive_tombstones": False},
    {"action": "rename", "from_tags": ["t00"], "to_tags": ["t11"]},
    {"action": "replace", "from_tags": ["t05"], "to_tags": ["brand_new"]},
    {"action": "remove", "tags": ["t01"], "set_kind": "tagger"},
]


@pytest.mark.parametrize(
    "request_body", REQUESTS, ids=lambda r: f"{r['action']}-{r.get('set_kind', 'curated')}"
)
def test_set_based_path_matches_the_per_item_path(request_body, curator, monkeypatch):
    items = random_library(seed=len(str(request_body)))
    fast = apply_and_undo(items, request_body, curator)
    assert fast.pop("set_sql"), "the set-based path did not run"
    monkeypatch.setattr(operations_exec.SET_SQL, "enabled", False)
    slow = apply_and_undo(items, request_body, curator)
    assert not slow.pop("set_sql")
    assert fast["counters"]["changes"] > 0
    assert fast == slow


def test_set_based_undo_keeps_later_edits_and_reports_them(curator):
    items = random_library(seed=3)
    having = [i for i in items if TagSet.objects.filter(media_item=i, kind=C).exists()]
    t13 = TagAssignment.objects.filter(tag__name="t13", kind=C)
    before = dict(t13.values_list("media_item_id", "state"))
    preview = ops.operation_preview(action="add", tags=["t13"], ids=[i.pk for i in having], actor=curator)
    applied = ops.operation_apply(operation=preview.operation, actor=curator).operation
    added = applied.counters["tags"]["t13"]["added"]
    assert added > 2
    later = ops.operation_preview(action="remove", tags=["t13"], ids=[having[0].pk], actor=curator)
    ops.operation_apply(operation=later.operation, actor=curator)
    undo = ops.operation_undo(operation=applied, actor=curator).operation
    assert undo.counters["conflicts"] == 1
    assert undo.counters["restored"] == added - 1
    assert undo.counters["conflict_samples"][0]["item"] == having[0].pk
    assert undo.counters["conflict_samples"][0]["now"] == "deleted"
    # The later removal stands as a tombstone; everything else is as before the add.
    assert dict(t13.values_list("media_item_id", "state")) == {**before, having[0].pk: 0}
    assert_no_drift()
