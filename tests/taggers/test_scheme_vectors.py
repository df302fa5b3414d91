"""Head and zero-shot steps in tagging schemes (docs/taggers.md#steps-on-stored-vectors): they
score stored vectors of the tiny open_clip space and write the item's tagger set
`<tagger>@<version>` through `apply.sets_replace`, the slot a head run writes too; params are
validated like the other kinds; items without a vector fail and make the run partial."""

from __future__ import annotations

import numpy as np
import pytest

from apps.core.exceptions import DomainError
from apps.jobs.models import Job
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, SchemeRun, StepRun, Tagger, TaggerVersion
from apps.taggers.services import apply, scheme_runs, training
from apps.taggers.services.embeddings import backend_for
from apps.taggers.services.schemes import SchemeInvalid, scheme_create
from apps.taggers.services.taggers import tagger_create
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services.names import vocabulary_default
from tests.taggers.factories import planted_head, planted_vectors, scheme_jobs_drain
from tests.tags.factories import items_make, tags_make

pytestmark = pytest.mark.django_db
CURATED, TAGGER = TagSet.Kind.CURATED, TagSet.Kind.TAGGER
N = 120
NAMES = ("red", "green", "blue")


def _drain() -> None:
    scheme_jobs_drain(limit=50, step_task="taggers.vectors")


@pytest.fixture
def head(space: EmbeddingSpace):
    """A trained head (planted signal) over 120 items with vectors; the re-score its promotion
    queued is dropped, so only the scheme step writes its sets."""
    world = planted_head(space, N, NAMES)
    Job.objects.filter(pk=world["tagger"].rescore_job_id).delete()
    return world


@pytest.fixture
def zeroshot(space: EmbeddingSpace):
    assert space.has_text_tower
    items = items_make(6)
    planted_vectors(space, items, seed=5)
    tags_make(NAMES)
    tagger = tagger_create(
        name="zs", vocabulary=vocabulary_default(), kind=Tagger.Kind.CLIP_ZEROSHOT, embedding_space=space,
        params={"templates": ["a picture of {}."]},
    )  # fmt: skip
    version = training.tagger_train(tagger=tagger)
    tagger.refresh_from_db()
    return {"tagger": tagger, "items": items, "version": version}


def _set(tagger: Tagger, version: TaggerVersion, item_id: int) -> dict[int, int]:
    rows = TagAssignment.objects.filter(
        media_item_id=item_id,
        kind=TAGGER,
        state=TagAssignment.State.CURRENT,
        tagset__slot=f"{tagger.name}@{version.number}",
    )
    return dict(rows.values_list("tag_id", "confidence"))


def _run(name: str, tagger: Tagger, params: dict | None = None, **kwargs) -> SchemeRun:
    step = {"key": "score", "tagger": tagger.name, "input": "image", "params": params or {}}
    scheme = scheme_create(name=name, body={"steps": [step]})
    run = scheme_runs.scheme_run_start(scheme=scheme, batch_size=50, **kwargs)
    _drain()
    run.refresh_from_db()
    return run


def test_a_head_step_writes_the_same_sets_as_a_head_run(head) -> None:
    ids = [i.pk for i in head["items"]]
    assert not any(_set(head["tagger"], head["version"], i) for i in ids)
    run = _run("heads", head["tagger"])
    from_step = {i: _set(head["tagger"], head["version"], i) for i in ids}
    again = apply.score_items(version=head["version"], item_ids=ids)
    step = StepRun.objects.get(run=run)
    assert run.status == SchemeRun.Status.SUCCEEDED, step.error
    assert (step.counts["items_done"], step.counts["sent"]) == (N, N)
    assert sum(len(v) for v in from_step.values()) > N // 2
    assert again["changes"] == 0  # the head run finds the step's rows equal to its own


def test_a_head_step_keeps_only_scores_at_its_threshold_and_top_k(head) -> None:
    _run("strict", head["tagger"], {"threshold": 0.6, "top_k": 1})
    sets = [_set(head["tagger"], head["version"], i.pk) for i in head["items"]]
    assert all(len(s) <= 1 for s in sets)
    assert all(c >= 6000 for s in sets for c in s.values())


def test_a_second_run_sends_nothing(head) -> None:
    _run("once", head["tagger"])
    scheme = scheme_runs.TaggingScheme.objects.get(name="once")
    run = scheme_runs.scheme_run_start(scheme=scheme)
    _drain()
    assert StepRun.objects.get(run=run).counts.get("sent", 0) == 0


def test_items_without_a_vector_fail_and_the_run_is_partial(head) -> None:
    bare = items_make(2)
    run = _run("partial", head["tagger"])
    step = StepRun.objects.get(run=run)
    assert run.status == SchemeRun.Status.PARTIAL
    assert step.counts["items_failed"] == 2
    assert "no vector" in step.counts["errors"][str(bare[0].pk)]


def test_zero_shot_train_makes_a_ready_active_version_with_frozen_prompts(zeroshot) -> None:
    version = zeroshot["version"]
    assert (version.status, zeroshot["tagger"].active_version_id) == (TaggerVersion.Status.READY, version.pk)
    assert version.job_id is None
    assert version.hyperparams["templates"] == ["a picture of {}."]
    assert sorted(p for _, p in version.hyperparams["prompts"]) == sorted(NAMES)


def test_a_zero_shot_step_scores_cosines_with_mcut(zeroshot, space) -> None:
    run = _run("zs", zeroshot["tagger"])
    assert run.status == SchemeRun.Status.SUCCEEDED, StepRun.objects.get(run=run).error
    keys = np.asarray([k for k, _ in zeroshot["version"].hyperparams["prompts"]])
    matrix = backend_for(space).text_matrix([p for _, p in zeroshot["version"].hyperparams["prompts"]],
                                            ["a picture of {}."])  # fmt: skip
    for item in zeroshot["items"]:
        vector = np.frombuffer(ImageEmbedding.objects.get(item=item, space=space).vector, "<f2")
        scores = (vector.astype(np.float32) @ matrix + 1) / 2
        got = _set(zeroshot["tagger"], zeroshot["version"], item.pk)
        best = int(keys[scores.argmax()])
        assert best in got
        assert got[best] == round(float(scores.max()) * 10000)
        assert len(got) < len(NAMES) or np.ptp(scores) == 0


def test_a_zero_shot_step_without_mcut_keeps_every_tag_over_its_threshold(zeroshot) -> None:
    _run("zs-all", zeroshot["tagger"], {"mcut": False, "threshold": 0.0})
    assert all(len(_set(zeroshot["tagger"], zeroshot["version"], i.pk)) == 3 for i in zeroshot["items"])


def test_a_zero_shot_tagger_without_a_text_tower_gets_no_version(space) -> None:
    EmbeddingSpace.objects.filter(pk=space.pk).update(has_text_tower=False)
    tags_make(NAMES)
    tagger = tagger_create(
        name="zs", vocabulary=vocabulary_default(), kind=Tagger.Kind.CLIP_ZEROSHOT,
        embedding_space=EmbeddingSpace.objects.get(pk=space.pk),
    )  # fmt: skip
    with pytest.raises(DomainError, match="text tower") as caught:
        training.tagger_train(tagger=tagger)
    assert caught.value.code == "taggers.no_text_tower"
    assert not TaggerVersion.objects.filter(tagger=tagger).exists()


@pytest.mark.parametrize("templates", [[], ["no placeholder"], ["{} and {}"], "a {}"])
def test_bad_zero_shot_templates_are_refused(space, templates) -> None:
    tags_make(NAMES)
    tagger = tagger_create(
        name="zs", vocabulary=vocabulary_default(), kind=Tagger.Kind.CLIP_ZEROSHOT, embedding_space=space,
        params={"templates": templates},
    )  # fmt: skip
    with pytest.raises(DomainError) as caught:
        training.tagger_train(tagger=tagger)
    assert caught.value.code == "taggers.bad_templates"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"threshold": float("nan")}, "params.threshold"),
        ({"threshold": 1.5}, "params.threshold"),
        ({"threshold": "high"}, "params.threshold"),
        ({"top_k": 0}, "params.top_k"),
        ({"top_k": True}, "params.top_k"),
        ({"mcut": "yes"}, "params.mcut"),
    ],
)
def test_vector_step_params_are_checked_naming_the_step(zeroshot, params, name) -> None:
    step = {"key": "zs_step", "tagger": "zs", "input": "image", "params": params}
    with pytest.raises(SchemeInvalid) as caught:
        scheme_create(name="bad", body={"steps": [step]})
    assert caught.value.code == "taggers.scheme_invalid"
    assert caught.value.details["step"] == "zs_step"
    assert name.split(".")[1] in caught.value.message


def test_a_vector_step_takes_only_whole_items(zeroshot) -> None:
    steps = [
        {"key": "persons", "tagger": "persons", "input": "image"},
        {"key": "zs_step", "tagger": "zs", "input": "regions:persons"},
    ]
    from tests.taggers.wd_fixtures import tagger_make

    tagger_make("persons", "detector", params={"backend": "fixed"})
    with pytest.raises(SchemeInvalid, match="zs_step"):
        scheme_create(name="bad", body={"steps": steps})


def test_a_head_without_a_space_cannot_be_a_step(db) -> None:
    Tagger.objects.create(name="bare", kind=Tagger.Kind.EMBEDDING_HEAD, vocabulary=vocabulary_default())
    step = {"key": "h", "tagger": "bare", "input": "image"}
    with pytest.raises(SchemeInvalid, match="no embedding space"):
        scheme_create(name="bad", body={"steps": [step]})


def test_zero_shot_train_over_the_api_is_a_201_with_the_version(api, zeroshot) -> None:
    response = api.post(f"/api/taggers/{zeroshot['tagger'].pk}/train", {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"]["number"] == 2


def test_a_space_with_no_vectors_fails_every_item(space) -> None:
    items_make(3)
    tags_make(NAMES)
    tagger = tagger_create(
        name="zs", vocabulary=vocabulary_default(), kind=Tagger.Kind.CLIP_ZEROSHOT, embedding_space=space
    )
    training.tagger_train(tagger=tagger)
    run = _run("empty", tagger)
    step = StepRun.objects.get(run=run)
    assert (run.status, step.counts["items_failed"], step.counts["sent"]) == (SchemeRun.Status.PARTIAL, 3, 0)
