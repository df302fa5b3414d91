"""Stored zero-shot text matrices (docs/taggers.md#stored-text-matrices): built once by the
space's text tower, reused by later step jobs without loading the model, keyed by model +
templates + prompt names (a change to any of those builds another, nothing else does), one
writer; SigLIP-style models (a logit bias) score sigmoid(scale·cos + bias)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from apps.taggers.engine import cache
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, SchemeRun, StepRun, Tagger, TaggerVersion
from apps.taggers.services import scheme_runs, text_matrices, training
from apps.taggers.services.schemes import SchemeInvalid, scheme_create
from apps.taggers.services.taggers import tagger_create, tagger_update
from apps.taggers.services.text_matrices import text_matrix_get, text_matrix_key
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services.names import vocabulary_default
from tests.taggers import factories
from tests.tags.factories import items_make, tags_make

pytestmark = pytest.mark.django_db
NAMES = ("red", "green", "blue")
TEMPLATES = ["a picture of {}."]


def _zeroshot(space: EmbeddingSpace, name: str = "zs", templates: list[str] | None = None) -> dict:
    items = items_make(4)
    factories.planted_vectors(space, items, seed=5)
    tags_make(NAMES)
    tagger = tagger_create(
        name=name, vocabulary=vocabulary_default(), kind=Tagger.Kind.CLIP_ZEROSHOT, embedding_space=space,
        params={"templates": templates or TEMPLATES},
    )  # fmt: skip
    version = training.tagger_train(tagger=tagger)
    tagger.refresh_from_db()
    return {"tagger": tagger, "items": items, "version": version}


def _run(name: str, tagger: Tagger, params: dict | None = None) -> StepRun:
    step = {"key": "score", "tagger": tagger.name, "input": "image", "params": params or {}}
    scheme = scheme_create(name=name, body={"steps": [step]})
    run = scheme_runs.scheme_run_start(scheme=scheme, batch_size=50)
    factories.scheme_jobs_drain(50)
    return StepRun.objects.select_related("run").get(run=run)


def _stored(space: EmbeddingSpace) -> list[Path]:
    return sorted(text_matrices.store_dir(space.pk).glob("*.npz"))


def _scores(tagger: Tagger, version: TaggerVersion, item_id: int) -> dict[int, int]:
    rows = TagAssignment.objects.filter(
        media_item_id=item_id,
        kind=TagSet.Kind.TAGGER,
        state=TagAssignment.State.CURRENT,
        tagset__slot=f"{tagger.name}@{version.number}",
    )
    return dict(rows.values_list("tag_id", "confidence"))


def test_a_second_step_job_reuses_the_stored_matrix_without_loading_the_model(space) -> None:
    zs = _zeroshot(space)
    cache.backends_clear()
    first = _run("one", zs["tagger"])
    assert first.status == StepRun.Status.SUCCEEDED, first.error
    stored = _stored(space)
    assert len(stored) == 1
    written = stored[0].stat()
    cache.backends_clear()  # as in a fresh worker process
    second = _run("two", zs["tagger"], {"mcut": False})
    assert second.status == StepRun.Status.SUCCEEDED, second.error
    assert not cache._loaded, "the text tower was loaded although the matrix was stored"
    assert _stored(space) == stored
    assert (stored[0].stat().st_ino, stored[0].stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert all(len(_scores(zs["tagger"], zs["version"], i.pk)) == 3 for i in zs["items"])


def test_the_stored_matrix_equals_the_text_towers(space) -> None:
    from apps.taggers.services.embeddings import backend_for

    names = ["red", "green", "blue"]
    built = text_matrix_get(space, names, TEMPLATES)
    read = text_matrix_get(space, names, TEMPLATES)
    assert (built.built, read.built) == (True, False)
    np.testing.assert_array_equal(read.matrix, built.matrix)
    direct = backend_for(space).text_matrix(names, TEMPLATES)
    np.testing.assert_allclose(read.matrix, direct, atol=1e-6)
    assert read.matrix.shape == (space.dim, 3)
    assert read.logit_bias is None


def test_new_templates_or_prompt_names_build_another_matrix(space) -> None:
    zs = _zeroshot(space)
    assert _run("one", zs["tagger"]).status == StepRun.Status.SUCCEEDED
    first = _stored(space)
    # Templates changed → a new version whose matrix is built; the old one stays as it was.
    tagger_update(tagger=zs["tagger"], params={"templates": ["an illustration of {}."]})
    v2 = training.tagger_train(tagger=zs["tagger"])
    from apps.taggers.services.versions import version_promote

    version_promote(tagger=zs["tagger"], number=v2.number)
    assert _run("two", zs["tagger"]).status == StepRun.Status.SUCCEEDED
    second = _stored(space)
    assert len(second) == 2
    assert set(first) < set(second)
    # The vocabulary changed (a new tag) → a new version, another matrix.
    tags_make(("yellow",))
    v3 = training.tagger_train(tagger=zs["tagger"])
    version_promote(tagger=zs["tagger"], number=v3.number)
    assert _run("three", zs["tagger"]).status == StepRun.Status.SUCCEEDED
    assert len(_stored(space)) == 3
    # The same version again: nothing new.
    assert _run("four", zs["tagger"]).status == StepRun.Status.SUCCEEDED
    assert len(_stored(space)) == 3


def test_the_key_changes_exactly_with_model_templates_and_names(space) -> None:
    names, key = ["red", "blue"], text_matrix_key(space, ["red", "blue"], TEMPLATES)
    assert text_matrix_key(space, list(names), list(TEMPLATES)) == key
    other_name = EmbeddingSpace(
        pk=space.pk,
        name="renamed",
        model_ref=space.model_ref,
        weights_sha256=space.weights_sha256,
        dim=space.dim,
    )
    assert text_matrix_key(other_name, names, TEMPLATES) == key  # the space's name is not the model
    other_weights = EmbeddingSpace(model_ref=space.model_ref, weights_sha256="0" * 64, dim=space.dim)
    other_ref = EmbeddingSpace(model_ref="local-dir:open_clip/other", weights_sha256=space.weights_sha256)
    assert text_matrix_key(other_weights, names, TEMPLATES) != key
    assert text_matrix_key(other_ref, names, TEMPLATES) != key
    assert text_matrix_key(space, names, ["an illustration of {}."]) != key
    assert text_matrix_key(space, names, [*TEMPLATES, "a photo of {}."]) != key
    assert text_matrix_key(space, ["red", "blue", "green"], TEMPLATES) != key
    assert text_matrix_key(space, ["blue", "red"], TEMPLATES) != key  # column order is the vocabulary's


def test_concurrent_builders_write_once(space) -> None:
    results: list[bool] = []
    start = threading.Barrier(3)

    def build() -> None:
        start.wait()
        results.append(text_matrix_get(space, ["red", "green"], TEMPLATES).built)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, True]
    assert len(_stored(space)) == 1
    assert not list(text_matrices.store_dir(space.pk).glob(".*.npz"))  # no temporary file left


def test_only_the_newest_matrices_of_a_space_are_kept(space, monkeypatch) -> None:
    monkeypatch.setattr(text_matrices, "KEEP", 2)
    for name in ("red", "green", "blue"):
        text_matrix_get(space, [name], TEMPLATES)
    assert len(_stored(space)) == 2
    assert text_matrix_get(space, ["blue"], TEMPLATES).built is False


# --- SigLIP-style scoring -------------------------------------------------------------------


@pytest.fixture
def siglip(model_dir: Path, tmp_path: Path) -> EmbeddingSpace:
    from apps.taggers.engine import provision
    from apps.taggers.services.spaces import space_create

    mirror = factories.tiny_siglip_mirror(tmp_path / "siglip-mirror", logit_bias=-1.0)
    provision.provision(
        model_root=model_dir, kind="open_clip", repo="test/siglip", name="siglip", from_dir=mirror
    )
    return space_create(name="siglip", model_ref="local-dir:open_clip/siglip")


def test_a_siglip_style_model_scores_sigmoid_probabilities(siglip) -> None:
    zs = _zeroshot(siglip, name="sig")
    stored = text_matrix_get(siglip, [p for _, p in zs["version"].hyperparams["prompts"]], TEMPLATES)
    assert stored.logit_bias == pytest.approx(-1.0)
    step = _run("sig", zs["tagger"], {"mcut": False})
    assert step.status == StepRun.Status.SUCCEEDED, step.error
    keys = [k for k, _ in zs["version"].hyperparams["prompts"]]
    for item in zs["items"]:
        vector = np.frombuffer(ImageEmbedding.objects.get(item=item, space=siglip).vector, "<f2")
        logits = (vector.astype(np.float32) @ stored.matrix) * stored.logit_scale + stored.logit_bias
        expected = {k: round(float(1 / (1 + np.exp(-z))) * 10000) for k, z in zip(keys, logits, strict=True)}
        assert any(0 < v < 10000 for v in expected.values())  # probabilities, not saturated
        assert _scores(zs["tagger"], zs["version"], item.pk) == expected


def test_cosine_scoring_can_be_asked_of_a_siglip_style_model(siglip) -> None:
    zs = _zeroshot(siglip, name="sig")
    step = _run("sig-cos", zs["tagger"], {"mcut": False, "scoring": "cosine"})
    assert step.status == StepRun.Status.SUCCEEDED, step.error
    got = _scores(zs["tagger"], zs["version"], zs["items"][0].pk)
    assert len(got) == 3
    assert all(2000 < v < 8000 for v in got.values())


def test_sigmoid_scoring_needs_a_siglip_style_model(space) -> None:
    zs = _zeroshot(space)
    step = _run("sig-bad", zs["tagger"], {"scoring": "sigmoid"})
    assert (step.status, step.run.status) == (StepRun.Status.FAILED, SchemeRun.Status.FAILED)
    assert "logit bias" in step.error


def test_an_unknown_scoring_is_refused_on_save(space) -> None:
    _zeroshot(space)
    step = {"key": "zs_step", "tagger": "zs", "input": "image", "params": {"scoring": "softmax"}}
    with pytest.raises(SchemeInvalid) as caught:
        scheme_create(name="bad", body={"steps": [step]})
    assert "scoring" in caught.value.message
