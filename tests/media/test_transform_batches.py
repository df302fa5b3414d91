"""Bulk transforms in batches (apps/media/services/transform_batches.py): the same rows, files,
lineage and inherited tags as `media_item_transform` one pair at a time; a batch that fails
leaves nothing behind and runs again pair by pair; a bulk job killed mid-batch resumes exactly."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.core.exceptions import DomainError
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, MediaSource
from apps.media.services.recipes import recipe_clean
from apps.media.services.transform_batches import media_item_transform_batches
from apps.media.services.transforms import (
    _encode,
    media_item_transform,
    media_transform_bulk_run,
    media_transform_bulk_start,
    transform_image,
)
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services import tag_set_curated_add
from tests.media.factories import WorkerKilled, job_items_record_dying, make_item
from tests.storage import MediaStore

pytestmark = pytest.mark.django_db

RECIPE = {
    "ops": [{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 64}],
    "output": {"format": "png"},
}
OUTSIDE = {"ops": [{"op": "crop", "box": [0, 0, 5000, 10]}], "output": {"format": "png"}}


def _expected(store: MediaStore, item: MediaItem, recipe: dict[str, Any]) -> bytes:
    clean = recipe_clean(recipe)
    with store.image(item.storage_key) as source:
        return _encode(transform_image(source, clean), clean["output"])


def _mixed(store: MediaStore) -> list[tuple[MediaItem, dict[str, Any]]]:
    """Ten pairs: tagged parents (source tags; a curated set), the same pair twice inside a
    batch and across batches, a parent transformed earlier, a corrupt original, a recipe that
    cannot apply, two parents whose results are the same bytes, and a result whose bytes are
    already an uploaded item."""
    a = make_item(["cat", "sky"], tag_source="src", fmt="jpeg", size=(160, 120), seed=41)
    b = make_item(["dog"], tag_source="src", fmt="png", size=(120, 160), seed=42)
    tag_set_curated_add(media_item=b, names=["dog", "grass"], actor=None)
    earlier = make_item(["sun"], tag_source="src", fmt="png", size=(90, 90), seed=43)
    media_item_transform(item=earlier, recipe=RECIPE)
    corrupt = make_item(fmt="jpeg", size=(100, 100), seed=44)
    store.write(corrupt.storage_key, b"\xff\xd8 not a jpeg at all")
    outside = make_item(fmt="png", size=(80, 60), seed=45)
    twin_png = make_item(["left"], tag_source="src", fmt="png", size=(100, 80), seed=46)
    twin_bmp = make_item(["right"], tag_source="src", fmt="bmp", size=(100, 80), seed=46)
    known = make_item(fmt="png", size=(110, 70), seed=47)
    make_item(data=_expected(store, known, RECIPE))  # its result's bytes, uploaded already
    return [
        (a, RECIPE),
        (b, RECIPE),
        (a, RECIPE),
        (earlier, RECIPE),
        (corrupt, RECIPE),
        (outside, OUTSIDE),
        (twin_png, RECIPE),
        (twin_bmp, RECIPE),
        (known, RECIPE),
        (a, RECIPE),
    ]


def _outcome(result: Any) -> tuple[Any, ...]:
    if isinstance(result, Exception):
        return ("error", getattr(result, "code", type(result).__name__))
    return ("ok", result.item.sha256, result.duplicate)


def _state(store: MediaStore, item_mark: int, source_mark: int) -> dict[str, Any]:
    """Everything a run added, without ids and times: items, sources, tag sets, tag rows, files."""
    skip = {"id", "created_at", "updated_at"}
    items = sorted(
        (
            tuple(sorted((k, v) for k, v in row.items() if k not in skip))
            for row in MediaItem.objects.filter(pk__gt=item_mark).values()
        ),
        key=repr,
    )
    sources = sorted(
        MediaSource.objects.filter(pk__gt=source_mark).values_list(
            "media_item__sha256", "kind", "import_job_id", "url", "original_filename", "artist", "added_by_id"
        )
    )
    sets = sorted(
        TagSet.objects.filter(media_item_id__gt=item_mark).values_list(
            "media_item__sha256", "kind", "slot", "origin_label", "assignment_count", "row_version"
        )
    )
    rows = sorted(
        TagAssignment.objects.filter(media_item_id__gt=item_mark).values_list(
            "media_item__sha256",
            "tagset__slot",
            "tag__name",
            "state",
            "position",
            "added_via",
            "origin_set_id",
            "entered_tag",
            "kind",
        )
    )
    keys = [
        k
        for pair in MediaItem.objects.filter(pk__gt=item_mark).values_list("storage_key", "thumbnail_key")
        for k in pair
    ]
    return {
        "items": items,
        "sources": sources,
        "sets": sets,
        "rows": rows,
        "files": {key: store.read(key) for key in keys if key},
    }


def _forget(store: MediaStore, item_mark: int, source_mark: int) -> None:
    results = MediaItem.objects.filter(pk__gt=item_mark)
    for key in [k for pair in results.values_list("storage_key", "thumbnail_key") for k in pair if k]:
        default_storage.delete(key)
    MediaSource.objects.filter(pk__gt=source_mark).delete()
    results.delete()


def test_batches_leave_what_one_pair_at_a_time_leaves(media_store, curator):
    pairs = _mixed(media_store)
    item_mark = MediaItem.objects.order_by("-pk").values_list("pk", flat=True).first()
    source_mark = MediaSource.objects.order_by("-pk").values_list("pk", flat=True).first()
    files_before = set(media_store.files())

    one_by_one = []
    for item, recipe in pairs:
        try:
            one_by_one.append(_outcome(media_item_transform(item=item, recipe=recipe, added_by=curator)))
        except DomainError as exc:
            one_by_one.append(_outcome(exc))
    expected = _state(media_store, item_mark, source_mark)
    _forget(media_store, item_mark, source_mark)
    assert set(media_store.files()) == files_before

    recorded: list[list[int]] = []
    batched = [
        _outcome(outcome)
        for batch in media_item_transform_batches(
            pairs, added_by=curator, size=4, record=lambda b: recorded.append([i.pk for i, _ in b])
        )
        for _, outcome in batch
    ]
    assert batched == one_by_one
    assert [o[0] for o in batched] == ["ok", "ok", "ok", "ok", "error", "error", "ok", "ok", "ok", "ok"]
    assert (batched[4][1], batched[5][1]) == ("media.corrupt", "media.box_outside")
    assert [o[2] for o in batched if o[0] == "ok"] == [False, False, True, True, False, True, True, True]
    assert _state(media_store, item_mark, source_mark) == expected
    assert recorded == [[i.pk for i, _ in pairs[k : k + 4]] for k in (0, 4, 8)]  # one call a batch
    # The results' bytes are what the pure transform gives.
    for (item, recipe), outcome in zip(pairs, batched, strict=True):
        if outcome[0] == "ok" and not outcome[2]:
            result = MediaItem.objects.get(sha256=outcome[1])
            assert media_store.read(result.storage_key) == _expected(media_store, item, recipe)
    inherited = TagAssignment.objects.filter(media_item__parent=pairs[1][0], kind=TagSet.Kind.DERIVED)
    assert sorted(inherited.values_list("tag__name", flat=True)) == ["dog", "grass"]  # the curated set's


def test_a_batch_that_fails_leaves_nothing_and_runs_again_pair_by_pair(media_store):
    items = [make_item(["x"], tag_source="src", fmt="png", size=(80, 80), seed=60 + k) for k in range(4)]
    bad = items[2]
    bad_bytes = _expected(media_store, bad, RECIPE)
    files_before = set(media_store.files())
    sources_before = MediaSource.objects.count()
    recorded: list[list[int]] = []

    def record(batch: list[tuple[MediaItem, Any]]) -> None:
        if any(item.pk == bad.pk and not isinstance(outcome, Exception) for item, outcome in batch):
            raise RuntimeError("the record of this item fails")
        recorded.append([item.pk for item, _ in batch])

    done = [
        pair
        for batch in media_item_transform_batches([(i, RECIPE) for i in items], record=record)
        for pair in batch
    ]
    assert [item.pk for item, _ in done] == [i.pk for i in items]
    assert isinstance(done[2][1], RuntimeError)
    assert recorded == [[i.pk] for i in items]  # the batch failed; then one record per pair
    made = [outcome.item for item, outcome in done if item.pk != bad.pk]
    assert [outcome.duplicate for item, outcome in done if item.pk != bad.pk] == [False, False, False]
    assert not MediaItem.objects.filter(parent=bad).exists()
    assert not MediaItem.objects.filter(sha256=hashlib.sha256(bad_bytes).hexdigest()).exists()
    assert MediaSource.objects.count() == sources_before + 3
    new_files = set(media_store.files()) - files_before
    assert new_files == {k for item in made for k in (item.storage_key, item.thumbnail_key)}  # no orphans
    assert TagSet.objects.filter(media_item__in=made, kind=TagSet.Kind.DERIVED).count() == 3


def test_a_bulk_job_killed_mid_batch_resumes_without_duplicates(media_store, curator, monkeypatch, settings):
    settings.BAGGINTAG_INGEST_THREADS = 2
    items = [make_item(["y"], tag_source="src", fmt="jpeg", size=(96, 72), seed=80 + k) for k in range(20)]
    job = media_transform_bulk_start(ids=[i.pk for i in items], recipe=RECIPE, added_by=curator)
    restore = job_items_record_dying(monkeypatch, on_call=2)  # the second batch's rows are written
    files_before = set(media_store.files())
    with pytest.raises(WorkerKilled):
        media_transform_bulk_run(job_id=job.pk)
    assert JobItem.objects.filter(job=job).count() == 16  # the first batch only
    assert MediaItem.objects.filter(parent__in=items).count() == 16
    assert len(set(media_store.files()) - files_before) == 2 * 16  # the second batch's files went

    restore()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(days=1))  # stale
    media_transform_bulk_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.counts) == ("succeeded", {"created": 20})
    rows = list(JobItem.objects.filter(job=job).order_by("seq").values_list("seq", "object_id"))
    assert [seq for seq, _ in rows] == list(range(20))
    results = MediaItem.objects.filter(parent__in=items)
    assert results.count() == 20
    assert sorted(results.values_list("pk", flat=True)) == sorted(o for _, o in rows)
    assert MediaSource.objects.filter(kind="transform", import_job_id=job.pk).count() == 20
    assert TagSet.objects.filter(media_item__in=results, kind=TagSet.Kind.DERIVED).count() == 20
    assert len(set(media_store.files()) - files_before) == 2 * 20


def test_the_batch_inheritance_equals_tag_set_inherit(media_store):
    """tag_sets_inherit for many pairs (one read, one write) gives the per-pair sets and rows."""
    from apps.tags import slots
    from apps.tags.services import tag_set_inherit, tag_sets_inherit

    parents = [make_item(["p", f"q{k}"], tag_source="src", seed=90 + k) for k in range(3)]
    tag_set_curated_add(media_item=parents[1], names=["only"], actor=None)
    bare = make_item(seed=99)
    kids = [make_item(seed=100 + k) for k in range(8)]
    pairs = [(kids[k], p) for k, p in enumerate([*parents, bare])]
    for kid, parent in pairs:
        tag_set_inherit(target=kid, source=parent, slot=slots.derived(relation="parent", item_id=parent.pk))
    made = tag_sets_inherit(
        pairs=[
            (kids[k + 4], p, slots.derived(relation="parent", item_id=p.pk)) for k, (_, p) in enumerate(pairs)
        ]
    )
    assert set(made) == {kids[4].pk, kids[5].pk, kids[6].pk}  # the bare parent passes nothing on

    def rows(kid: MediaItem) -> list[tuple[Any, ...]]:
        return sorted(
            TagAssignment.objects.filter(media_item=kid).values_list(
                "tag__name", "position", "added_via", "origin_set_id", "entered_tag", "state"
            )
        )

    def sets(kid: MediaItem) -> list[tuple[Any, ...]]:
        return list(
            TagSet.objects.filter(media_item=kid).values_list(
                "slot", "origin_label", "assignment_count", "row_version"
            )
        )

    for k in range(4):
        assert (rows(kids[k + 4]), sets(kids[k + 4])) == (rows(kids[k]), sets(kids[k]))
    assert [r[0] for r in rows(kids[5])] == ["only", "p", "q1"]  # the curated set (seeded)
    again = tag_sets_inherit(
        pairs=[(kids[4], parents[0], slots.derived(relation="parent", item_id=parents[0].pk))]
    )
    assert again == {kids[4].pk: made[kids[4].pk]}  # idempotent
    kids[4].refresh_from_db()
    assert kids[4].tag_count == 2
