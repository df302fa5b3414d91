"""Debounced retraining (docs/taggers.md#debounced-retraining): curated label changes written by
the tags app's one writer count per head tagger after commit; reaching the count makes the
tagger due after the delay; the beat task queues one training per due tagger."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import transaction

from apps.taggers.models import EmbeddingSpace, ImageEmbedding, LabelChanges, Tagger, TaggerVersion
from apps.taggers.services import retrain
from apps.taggers.services.taggers import tagger_create
from apps.tags.models import TagSet, Vocabulary
from apps.tags.services.assignments import ABSENT, CURRENT, DELETED, Transition, assignments_write
from apps.tags.services.names import vocabulary_default
from tests.tags.factories import assign, items_make, tag_type, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED


@pytest.fixture
def world(space: EmbeddingSpace, settings):
    settings.BAGGINTAG_RETRAIN_AFTER_CHANGES = 5
    settings.BAGGINTAG_RETRAIN_DELAY_S = 0
    items = items_make(12)
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(item=i, space=space, vector=np.ones(space.dim, "<f2").tobytes()) for i in items]
    )
    tags = tags_make(["seed", "a", "b"])
    assign([(i.pk, CURATED, tags["seed"].pk) for i in items])  # every item has a curated set
    head = tagger_create(
        name="head", vocabulary=vocabulary_default(), kind=Tagger.Kind.EMBEDDING_HEAD, embedding_space=space
    )
    sets = dict(TagSet.objects.filter(kind=CURATED).values_list("media_item_id", "pk"))
    return {"head": head, "items": items, "tags": tags, "sets": sets}


def _edit(world, n: int, tag: str = "a", *, capture) -> None:
    """n curated additions of `tag` through the one writer, committed (callbacks run)."""
    tag_id = world["tags"][tag].pk if tag in world["tags"] else tag
    transitions = [
        Transition(world["sets"][item.pk], tag_id, item.pk, ABSENT, CURRENT, via="manual")
        for item in world["items"][:n]
    ]
    with capture(execute=True):
        assignments_write(transitions, kind=CURATED, operation_id=None, actor_id=None)


def _counter(world) -> LabelChanges | None:
    return LabelChanges.objects.filter(tagger=world["head"]).first()


def test_changes_below_the_count_are_counted_but_not_due(world, django_capture_on_commit_callbacks) -> None:
    _edit(world, 4, capture=django_capture_on_commit_callbacks)
    counter = _counter(world)
    assert (counter.changes, counter.due_at) == (4, None)


def test_reaching_the_count_makes_the_tagger_due_once(world, django_capture_on_commit_callbacks) -> None:
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    first = _counter(world).due_at
    _edit(world, 3, "b", capture=django_capture_on_commit_callbacks)
    counter = _counter(world)
    assert first is not None
    assert (counter.changes, counter.due_at) == (8, first)


def test_removals_count_too(world, django_capture_on_commit_callbacks) -> None:
    transitions = [
        Transition(world["sets"][i.pk], world["tags"]["seed"].pk, i.pk, CURRENT, DELETED)
        for i in world["items"][:2]
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assignments_write(transitions, kind=CURATED, operation_id=None, actor_id=None)
    assert _counter(world).changes == 2


def test_the_beat_queues_one_training_and_resets_the_counter(
    world, django_capture_on_commit_callbacks
) -> None:
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    result = retrain.retrain_due()
    version = TaggerVersion.objects.get(tagger=world["head"])
    counter = _counter(world)
    assert result["versions"] == [version.pk]
    assert (version.status, version.job_id is not None) == (TaggerVersion.Status.QUEUED, True)
    assert (counter.changes, counter.due_at) == (0, None)


def test_one_pending_training_per_tagger(world, django_capture_on_commit_callbacks) -> None:
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    retrain.retrain_due()
    _edit(world, 6, "b", capture=django_capture_on_commit_callbacks)
    again = retrain.retrain_due()
    assert TaggerVersion.objects.filter(tagger=world["head"]).count() == 1
    assert again["versions"] == [TaggerVersion.objects.get(tagger=world["head"]).pk]


def test_nothing_is_queued_before_the_delay(world, settings, django_capture_on_commit_callbacks) -> None:
    settings.BAGGINTAG_RETRAIN_DELAY_S = 300
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    assert retrain.retrain_due() == {"versions": [], "refused": []}
    assert not TaggerVersion.objects.exists()


def test_a_count_of_zero_turns_it_off(world, settings, django_capture_on_commit_callbacks) -> None:
    settings.BAGGINTAG_RETRAIN_AFTER_CHANGES = 0
    _edit(world, 8, capture=django_capture_on_commit_callbacks)
    assert _counter(world) is None


def test_tags_outside_the_heads_vocabulary_or_types_do_not_count(
    world, django_capture_on_commit_callbacks
) -> None:
    other = Vocabulary.objects.create(name="Other", slug="other")
    foreign = tags_make(["x"], vocabulary=other)["x"]
    assign([(world["items"][0].pk, CURATED, foreign.pk)], vocabulary=other)
    world["head"].tag_types.set([tag_type("character")])
    _edit(world, 6, capture=django_capture_on_commit_callbacks)  # general tags: not the head's types
    assert _counter(world) is None


def test_a_rolled_back_write_counts_nothing(world, django_capture_on_commit_callbacks) -> None:
    transitions = [
        Transition(world["sets"][i.pk], world["tags"]["a"].pk, i.pk, ABSENT, CURRENT, via="manual")
        for i in world["items"][:6]
    ]

    def write_then_fail() -> None:
        with transaction.atomic():
            assignments_write(transitions, kind=CURATED, operation_id=None, actor_id=None)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        write_then_fail()
    assert _counter(world) is None


def test_a_tagger_that_cannot_train_is_refused_and_starts_again(
    world, django_capture_on_commit_callbacks
) -> None:
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    ImageEmbedding.objects.all().delete()
    result = retrain.retrain_due()
    assert result == {"versions": [], "refused": [world["head"].pk]}
    assert not TaggerVersion.objects.exists()
    assert _counter(world).changes == 0


def test_a_failing_listener_never_breaks_the_write(
    world, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    def boom(counts):
        raise RuntimeError("listener down")

    monkeypatch.setattr(retrain, "_heads", boom)
    _edit(world, 5, capture=django_capture_on_commit_callbacks)
    assert TagSet.objects.get(pk=world["sets"][world["items"][0].pk]).assignments.count() == 2


@pytest.mark.parametrize("set_sql", [True, False], ids=["set-based", "per-item"])
def test_a_bulk_operation_counts_on_both_paths(
    world, curator, monkeypatch, set_sql, django_capture_on_commit_callbacks
) -> None:
    from apps.tags.services import operations as ops
    from apps.tags.services.operations import apply as operations_exec

    monkeypatch.setattr(operations_exec.SET_SQL, "enabled", set_sql)
    ids = [i.pk for i in world["items"]]
    preview = ops.operation_preview(action="add", tags=["a"], ids=ids, actor=curator)
    with django_capture_on_commit_callbacks(execute=True):
        ops.operation_apply(operation=preview.operation, actor=curator)
    counter = _counter(world)
    assert counter.changes == len(ids)
    assert counter.due_at is not None
