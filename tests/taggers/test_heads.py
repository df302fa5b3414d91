"""Head taggers end to end on the database: frozen labels, training job, versions and promotion,
scoring through the one writer, thresholds, review (docs/taggers.md#training, #applying, #review).

Vectors are planted-signal rows written straight into the tiny space (dim 32); the job bodies
are called directly (flow tests with a real worker are in test_heads_flow.py).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage

from apps.core.exceptions import ConflictError, DomainError
from apps.jobs.models import Job
from apps.taggers.engine.base import ModelIntegrityError, VersionFrozen
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, ReviewMark, Tagger, TaggerVersion
from apps.taggers.selectors import predictions as pred
from apps.taggers.selectors.labels import labels_freeze
from apps.taggers.services import apply, review, training, versions
from apps.taggers.services.taggers import tagger_create
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services.curation import tag_set_edit
from apps.tags.services.names import vocabulary_default
from tests.tags.factories import assign, items_make, tag_type, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED
N = 240
NAMES = ("tag_a", "tag_b", "tag_c")


@dataclass
class World:
    space: EmbeddingSpace
    tagger: Tagger
    item_ids: list[int]
    x: np.ndarray
    truth: np.ndarray  # items × tags, 0/1
    tags: dict[str, Any]


@pytest.fixture
def world(space: EmbeddingSpace) -> World:
    EmbeddingSpace.objects.filter(pk=space.pk).update(has_text_tower=False)
    space.refresh_from_db()
    items = items_make(N)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, space.dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype("<f2")
    signal = x.astype(np.float64) @ rng.standard_normal((space.dim, len(NAMES)))
    truth = np.zeros((N, len(NAMES)), dtype=np.int8)
    for j, prevalence in enumerate((0.2, 0.3, 0.4)):
        truth[np.argsort(-signal[:, j])[: round(prevalence * N)], j] = 1
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(item=item, space=space, vector=x[n].tobytes()) for n, item in enumerate(items)]
    )
    tags = tags_make(NAMES)
    assign([(items[n].pk, CURATED, tags[NAMES[j]].pk) for n, j in zip(*np.nonzero(truth), strict=True)])
    general = tag_type("general")
    ReviewMark.objects.bulk_create([ReviewMark(item=item, tag_type=general) for item in items])
    tagger = tagger_create(
        name="planted",
        vocabulary=vocabulary_default(),
        kind=Tagger.Kind.EMBEDDING_HEAD,
        embedding_space=space,
        params={"min_steps": 300, "max_steps": 300},
    )
    return World(space, tagger, [i.pk for i in items], x, truth, tags)


def train(world: World, seed: int = 0) -> TaggerVersion:
    version = training.tagger_train(tagger=world.tagger, seed=seed)
    training.train_run(job_id=version.job_id)
    version.refresh_from_db()
    world.tagger.refresh_from_db()
    return version


@pytest.fixture
def trained(world: World) -> TaggerVersion:
    return train(world)


def test_training_makes_a_ready_version(trained: TaggerVersion) -> None:
    assert trained.status == TaggerVersion.Status.READY


def test_training_learns_the_planted_tags(trained: TaggerVersion) -> None:
    assert trained.metrics["macro_map"] >= 0.8


def test_training_stores_every_artifact(trained: TaggerVersion) -> None:
    names = [f"{trained.artifact_dir}/{n}" for n in versions.ARTIFACT_FILES]
    assert all(default_storage.exists(n) for n in names)


def test_training_job_succeeds_with_the_version_in_its_result(trained: TaggerVersion) -> None:
    job = Job.objects.get(pk=trained.job_id)
    assert (job.status, job.result["version"]) == (Job.Status.SUCCEEDED, trained.pk)


def test_first_version_auto_promotes(world: World, trained: TaggerVersion) -> None:
    assert world.tagger.active_version_id == trained.pk


def test_worse_version_stays_inactive_until_promoted(world: World, trained: TaggerVersion) -> None:
    Tagger.objects.filter(pk=world.tagger.pk).update(
        params={"min_steps": 1, "max_steps": 1, "eval_every": 1, "lr": 1e-7}
    )
    world.tagger.refresh_from_db()
    worse = train(world, seed=1)
    assert (worse.status, world.tagger.active_version_id) == (TaggerVersion.Status.READY, trained.pk)


def test_worse_version_reports_a_negative_delta(world: World, trained: TaggerVersion) -> None:
    Tagger.objects.filter(pk=world.tagger.pk).update(params={"min_steps": 1, "max_steps": 1, "lr": 1e-7})
    world.tagger.refresh_from_db()
    assert train(world, seed=1).metrics["delta_prev"] < 0


def test_promote_then_rollback_restores_the_previous_version(world: World, trained: TaggerVersion) -> None:
    Tagger.objects.filter(pk=world.tagger.pk).update(params={"min_steps": 1, "max_steps": 1, "lr": 1e-7})
    world.tagger.refresh_from_db()
    worse = train(world, seed=1)
    versions.version_promote(tagger=world.tagger, number=worse.number)
    rolled = versions.version_rollback(tagger=world.tagger)
    assert rolled.active_version_id == trained.pk


def test_promoting_a_failed_version_is_a_conflict(world: World) -> None:
    version = TaggerVersion.objects.create(tagger=world.tagger, number=9, status=TaggerVersion.Status.FAILED)
    with pytest.raises(ConflictError, match="failed"):
        versions.version_promote(tagger=world.tagger, number=version.number)


def test_rollback_without_a_previous_version_is_a_conflict(world: World, trained: TaggerVersion) -> None:
    with pytest.raises(ConflictError, match="no earlier active version"):
        versions.version_rollback(tagger=world.tagger)


def test_training_without_labels_is_refused(space: EmbeddingSpace) -> None:
    items = items_make(3)
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(item=i, space=space, vector=np.zeros(space.dim, "<f2").tobytes()) for i in items]
    )
    tagger = tagger_create(
        name="empty", vocabulary=vocabulary_default(), kind=Tagger.Kind.EMBEDDING_HEAD, embedding_space=space
    )
    with pytest.raises(DomainError, match="nothing to learn from"):
        training.tagger_train(tagger=tagger)


def test_too_few_positives_fail_the_job_with_a_message(world: World) -> None:
    TagAssignment.objects.filter(kind=CURATED, tag__name__in=["tag_a", "tag_b", "tag_c"]).exclude(
        media_item_id__in=world.item_ids[:3]
    ).delete()
    version = training.tagger_train(tagger=world.tagger, seed=0)
    training.train_run(job_id=version.job_id)
    job = Job.objects.get(pk=version.job_id)
    assert (job.status, job.error_code) == (Job.Status.FAILED, "taggers.training_failed")


def test_failed_training_marks_the_version_failed(world: World) -> None:
    TagAssignment.objects.filter(kind=CURATED).exclude(media_item_id__in=world.item_ids[:3]).delete()
    version = training.tagger_train(tagger=world.tagger, seed=0)
    training.train_run(job_id=version.job_id)
    version.refresh_from_db()
    assert version.status == TaggerVersion.Status.FAILED


def test_curated_edits_during_training_leave_the_frozen_labels(world: World, monkeypatch) -> None:
    """§10 item 18: the labels are read once; an edit while the head trains changes nothing."""
    from apps.taggers.engine import train as engine

    real = engine.head_train
    curated = TagSet.objects.filter(kind=CURATED, media_item_id=world.item_ids[0]).first()

    def editing(**kwargs: Any) -> Any:
        tag_set_edit(tag_set=curated, add=["tag_a", "tag_b", "tag_c"])
        return real(**kwargs)

    monkeypatch.setattr(engine, "head_train", editing)
    version = train(world)
    stored = np.load(default_storage.open(f"{version.artifact_dir}/labels.npz", "rb"))
    from apps.taggers.engine.artifacts import labels_sha256

    keys = sorted(int(k) for k in version.metrics["tags"])
    assert labels_sha256(stored["item_ids"], keys, stored["labels"]) == version.labels_sha256


def test_curated_edits_change_the_next_frozen_labels(world: World, trained: TaggerVersion) -> None:
    curated = TagSet.objects.get(kind=CURATED, media_item_id=world.item_ids[-1])
    tag_set_edit(tag_set=curated, add=["tag_a", "tag_b", "tag_c"])
    from apps.taggers.engine.artifacts import labels_sha256

    frozen = labels_freeze(tagger=world.tagger, embedded_ids=np.asarray(world.item_ids))
    assert labels_sha256(frozen.item_ids, frozen.tag_ids, frozen.labels) != trained.labels_sha256


def test_frozen_labels_without_review_marks_are_unknown(world: World) -> None:
    ReviewMark.objects.all().delete()
    frozen = labels_freeze(tagger=world.tagger, embedded_ids=np.asarray(world.item_ids))
    assert set(np.unique(frozen.labels).tolist()) == {-1, 1}


def test_ready_version_refuses_changes(trained: TaggerVersion) -> None:
    trained.metrics = {"macro_map": 1.0}
    with pytest.raises(VersionFrozen):
        trained.save()


def test_ready_version_may_retire(world: World, trained: TaggerVersion) -> None:
    Tagger.objects.filter(pk=world.tagger.pk).update(active_version=None)
    assert versions.version_retire(version=trained).status == TaggerVersion.Status.RETIRED


def test_artifacts_are_read_only(trained: TaggerVersion) -> None:
    mode = os.stat(default_storage.path(f"{trained.artifact_dir}/head.safetensors")).st_mode
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0


def test_tampered_artifact_fails_on_load(trained: TaggerVersion) -> None:
    path = Path(default_storage.path(f"{trained.artifact_dir}/thresholds.json"))
    path.chmod(0o644)
    path.write_text(path.read_text().replace("0.", "0.0", 1))
    with pytest.raises(ModelIntegrityError, match=r"thresholds\.json"):
        versions.version_head(trained)


def stored_rows(version: TaggerVersion) -> list[tuple[int, int, int | None]]:
    return sorted(pred.predictions(version=version).values_list("media_item_id", "tag_id", "confidence"))


def test_stored_scores_are_exactly_those_at_or_above_the_floor(world: World, trained: TaggerVersion) -> None:
    apply.score_items(version=trained, item_ids=world.item_ids)
    head = versions.version_head(trained)
    scores = head.score(world.x.astype(np.float32))
    expected = sorted(
        (world.item_ids[n], head.keys[c], round(float(scores[n, c]) * 10_000))
        for n, c in zip(*np.nonzero(scores >= world.tagger.stored_threshold), strict=True)
    )
    assert stored_rows(trained) == expected


def test_scoring_keeps_at_most_512_per_item() -> None:
    from apps.taggers.engine.artifacts import Head

    head = Head(
        network="linear", keys=list(range(600)),
        tensors={"head.0.weight": np.zeros((600, 4), np.float32), "head.0.bias": np.ones(600, np.float32)},
        head_rows=list(range(600)), lr_rows=[], thresholds={}, space={},
    )  # fmt: skip
    assert len(apply.predictions_for(head, np.zeros((1, 4), np.float32), 0.1)[0]) == 512


def test_scoring_twice_writes_nothing_new(world: World, trained: TaggerVersion) -> None:
    apply.score_items(version=trained, item_ids=world.item_ids)
    before = stored_rows(trained)
    again = apply.score_items(version=trained, item_ids=world.item_ids)
    assert (again["changes"], stored_rows(trained)) == (0, before)


def test_scoring_makes_one_set_per_item_and_version(world: World, trained: TaggerVersion) -> None:
    apply.score_items(version=trained, item_ids=world.item_ids)
    apply.score_items(version=trained, item_ids=world.item_ids)
    assert TagSet.objects.filter(kind=TagSet.Kind.TAGGER, slot=f"planted@{trained.number}").count() == N


def curated_state() -> list[tuple[Any, ...]]:
    return sorted(
        TagAssignment.objects.filter(kind=CURATED).values_list(
            "tagset_id", "tag_id", "state", "position", "added_via", "updated_at"
        )
    )


def test_scoring_leaves_curated_sets_untouched(world: World, trained: TaggerVersion) -> None:
    before = curated_state()
    apply.score_items(version=trained, item_ids=world.item_ids)
    assert curated_state() == before


def test_score_job_counts_items_without_vectors(world: World, trained: TaggerVersion) -> None:
    extra = items_make(2)
    job = apply.tagger_run(tagger=world.tagger, ids=[*world.item_ids[:5], *(i.pk for i in extra)])
    apply.score_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.result["scored"], job.result["missing_embedding"]) == (Job.Status.SUCCEEDED, 5, 2)


def test_run_takes_a_queryset(world: World, trained: TaggerVersion) -> None:
    from apps.media.models import MediaItem

    job = apply.tagger_run(tagger=world.tagger, items=MediaItem.objects.filter(pk__in=world.item_ids[:7]))
    assert job.progress_total == 7


def test_run_without_an_active_version_is_a_conflict(world: World) -> None:
    with pytest.raises(ConflictError, match="no active version"):
        apply.tagger_run(tagger=world.tagger, ids=world.item_ids[:2])


def test_threshold_override_changes_effective_predictions_and_runs_nothing(
    world: World, trained: TaggerVersion
) -> None:
    apply.score_items(version=trained, item_ids=world.item_ids)
    tag = world.tags["tag_a"]
    before = pred.predictions_effective(version=trained).filter(tag=tag).count()
    jobs = Job.objects.count()
    versions.threshold_override_set(version=trained, tag_id=tag.pk, threshold=0.99)
    after = pred.predictions_effective(version=trained).filter(tag=tag).count()
    assert (after < before, Job.objects.count()) == (True, jobs)


def test_deleting_an_override_restores_the_tuned_threshold(world: World, trained: TaggerVersion) -> None:
    tag = world.tags["tag_b"]
    tuned = trained.thresholds.get(tag=tag).threshold
    versions.threshold_override_set(version=trained, tag_id=tag.pk, threshold=0.9)
    versions.threshold_override_delete(version=trained, tag_id=tag.pk)
    assert trained.thresholds.get(tag=tag).threshold == tuned


def unlabelled_prediction(world: World, version: TaggerVersion) -> tuple[int, int]:
    """The most confident tag_c prediction, its curated row removed (so it is undecided)."""
    apply.score_items(version=version, item_ids=world.item_ids)
    row = pred.predictions(version=version).filter(tag=world.tags["tag_c"]).order_by("-confidence").first()
    assert row is not None
    TagAssignment.objects.filter(kind=CURATED, media_item_id=row.media_item_id, tag_id=row.tag_id).delete()
    return row.media_item_id, row.tag_id


def test_reject_leaves_a_curated_tombstone(world: World, trained: TaggerVersion) -> None:
    item_id, tag_id = unlabelled_prediction(world, trained)
    review.prediction_reject(version=trained, item_id=item_id, tag_id=tag_id)
    row = TagAssignment.objects.get(kind=CURATED, media_item_id=item_id, tag_id=tag_id)
    assert row.state == TagAssignment.State.DELETED


def test_rejected_prediction_blocks_a_later_accept(world: World, trained: TaggerVersion) -> None:
    item_id, tag_id = unlabelled_prediction(world, trained)
    review.prediction_reject(version=trained, item_id=item_id, tag_id=tag_id)
    result = review.prediction_accept(version=trained, item_id=item_id, tag_id=tag_id)
    assert result["blocked_by_tombstone"] == ["tag_c"]


def test_rejected_prediction_is_a_negative_for_the_next_training(
    world: World, trained: TaggerVersion
) -> None:
    item_id, tag_id = unlabelled_prediction(world, trained)
    ReviewMark.objects.filter(item_id=item_id).delete()
    review.prediction_reject(version=trained, item_id=item_id, tag_id=tag_id)
    frozen = labels_freeze(tagger=world.tagger, embedded_ids=np.asarray(world.item_ids))
    row = int(np.searchsorted(frozen.item_ids, item_id))
    assert frozen.labels[row, frozen.tag_ids.index(tag_id)] == 0


def test_accept_promotes_into_the_curated_set(world: World, trained: TaggerVersion) -> None:
    item_id, tag_id = unlabelled_prediction(world, trained)
    review.prediction_accept(version=trained, item_id=item_id, tag_id=tag_id)
    row = TagAssignment.objects.get(kind=CURATED, media_item_id=item_id, tag_id=tag_id)
    assert (row.state, row.added_via) == (TagAssignment.State.CURRENT, TagAssignment.Via.PROMOTE)


def test_batch_accept_promotes_every_undecided_prediction_above_the_bar(
    world: World, trained: TaggerVersion
) -> None:
    unlabelled_prediction(world, trained)
    review.predictions_batch_accept(version=trained, min_confidence=0.0)
    confident = pred.predictions(version=trained).filter(confidence__gte=5000)
    curated = set(
        TagAssignment.objects.filter(kind=CURATED, state=TagAssignment.State.CURRENT).values_list(
            "media_item_id", "tag_id"
        )
    )
    missing = [(r.media_item_id, r.tag_id) for r in confident if (r.media_item_id, r.tag_id) not in curated]
    assert missing == []


def test_batch_accept_reports_what_it_added(world: World, trained: TaggerVersion) -> None:
    unlabelled_prediction(world, trained)
    assert review.predictions_batch_accept(version=trained, min_confidence=0.0)["added"] >= 1


def test_review_queue_puts_the_most_uncertain_first(world: World, trained: TaggerVersion) -> None:
    unlabelled_prediction(world, trained)
    queue = pred.review_queue(version=trained, limit=20)
    gaps = [abs(r.confidence - r.threshold) for r in queue]
    assert gaps == sorted(gaps)


def test_review_agreement_counts_accepts_and_rejects(world: World, trained: TaggerVersion) -> None:
    item_id, tag_id = unlabelled_prediction(world, trained)
    review.prediction_reject(version=trained, item_id=item_id, tag_id=tag_id)
    stats = {a.name: a for a in pred.review_agreement(version=trained)}
    assert stats["tag_c"].rejected == 1


def test_a_taken_over_training_attempt_cannot_finish_or_touch_the_winner(world: World, monkeypatch) -> None:
    """Attempt 1 stalls after storing its files; the sweeper re-queues the job and attempt 2
    trains and finishes. Attempt 1 then wakes: fenced off, it writes nothing and deletes only
    its own folder (docs/taggers.md#versions)."""
    from apps.jobs.exceptions import JobSuperseded

    version = training.tagger_train(tagger=world.tagger, seed=0)
    real_store = training._store
    taken = []

    def store_then_taken_over(*args: Any) -> str:
        sha = real_store(*args)
        if not taken:
            taken.append(True)
            Job.objects.filter(pk=version.job_id).update(status=Job.Status.QUEUED)  # the sweeper
            training.train_run(job_id=version.job_id)  # another worker: attempt 2
        return sha

    monkeypatch.setattr(training, "_store", store_then_taken_over)
    with pytest.raises(JobSuperseded):
        training.train_run(job_id=version.job_id)
    version.refresh_from_db()
    first = f"taggers/{world.tagger.name}/{version.number}/a1"
    assert version.status == TaggerVersion.Status.READY
    assert version.artifact_dir == f"taggers/{world.tagger.name}/{version.number}/a2"
    assert all(default_storage.exists(f"{version.artifact_dir}/{n}") for n in versions.ARTIFACT_FILES)
    assert not any(default_storage.exists(f"{first}/{n}") for n in versions.ARTIFACT_FILES)
    assert Job.objects.get(pk=version.job_id).status == Job.Status.SUCCEEDED
    assert versions.version_head(version) is not None  # the winner's files load and hash right


def test_finishing_never_overwrites_a_ready_version(trained: TaggerVersion) -> None:
    Job.objects.filter(pk=trained.job_id).update(status=Job.Status.RUNNING)
    job = Job.objects.get(pk=trained.job_id)
    before = (trained.artifact_dir, trained.artifact_sha256)
    with pytest.raises(VersionFrozen):
        training._finish(trained, job, None, "taggers/elsewhere/a9", "0" * 64, {})
    trained.refresh_from_db()
    assert (trained.status, trained.artifact_dir, trained.artifact_sha256) == (
        TaggerVersion.Status.READY,
        *before,
    )


def test_scoring_drops_and_counts_predictions_of_a_tag_deleted_since_training(
    world: World, trained: TaggerVersion
) -> None:
    from apps.taggers.models import TaggerThreshold
    from apps.tags.models import Tag

    TagAssignment.objects.filter(tag__name="tag_c").delete()  # what the tag page does first
    TaggerThreshold.objects.filter(tag__name="tag_c").delete()
    Tag.objects.filter(name="tag_c").delete()
    counts = apply.score_items(version=trained, item_ids=world.item_ids)
    names = set(pred.predictions(version=trained).values_list("tag__name", flat=True))
    assert counts["tags_unknown"] > 0
    assert names == {"tag_a", "tag_b"}
