"""Embedding spaces and the embed job, run inline (docs/taggers.md#embedding-spaces): §10 checks
4 (blobs, norms, one row), 5 (other weights write nothing), 32 (missing files: 409 and a job
that fails unretried) and resumability."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from apps.jobs.models import Job
from apps.taggers.models import EmbeddingSpace, ImageEmbedding
from apps.taggers.services import embeddings, spaces
from tests.media.factories import make_item
from tests.taggers import factories

pytestmark = pytest.mark.django_db
COLOURS = [(220, 30, 30), (30, 180, 40), (30, 60, 220)]


def _items(n: int) -> list:
    return [make_item(data=factories.solid_png(COLOURS[i % 3], seed=i)) for i in range(n)]


def _embed(space: EmbeddingSpace, **kwargs) -> Job:
    job = spaces.space_embed(space=space, **kwargs)
    embeddings.embed_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def test_the_api_creates_a_space_from_a_provisioned_local_dir(api, model_dir: Path) -> None:
    response = api.post(
        "/api/embedding-spaces/", {"name": "tiny", "model_ref": "local-dir:open_clip/tiny"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["dim"], body["dtype"], body["has_text_tower"]) == (32, "float16", True)
    assert body["preprocess_cfg"]["resize_mode"] == "squash"


@pytest.mark.parametrize("ref", ["ViT-B-32|laion2b_s34b_b79k", "hf-hub:org/x"])
def test_the_api_refuses_refs_that_download(api, model_dir: Path, ref: str) -> None:
    response = api.post("/api/embedding-spaces/", {"name": "x", "model_ref": ref}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "taggers.invalid_model_ref"


def test_missing_weights_are_a_409_naming_directory_and_file(api, model_dir: Path) -> None:
    (model_dir / "open_clip/tiny/open_clip_model.safetensors").unlink()
    response = api.post(
        "/api/embedding-spaces/", {"name": "x", "model_ref": "local-dir:open_clip/tiny"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["details"]["missing"] == ["open_clip/tiny/open_clip_model.safetensors"]
    assert "open_clip/tiny" in body["message"]


def test_the_same_weights_and_preprocessing_are_one_space(api, space: EmbeddingSpace) -> None:
    response = api.post(
        "/api/embedding-spaces/", {"name": "again", "model_ref": "local-dir:open_clip/tiny"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["details"]["space"] == space.pk


def test_embedding_stores_one_fp16_unit_vector_per_item(space: EmbeddingSpace) -> None:
    """§10.4: blobs are dim×2 bytes, norm 1 ± 1e-3; embedding twice leaves one row."""
    items = _items(5)
    job = _embed(space)
    assert (job.status, job.counts.get("embedded"), job.progress_done, job.progress_total) == (
        "succeeded",
        5,
        5,
        5,
    )
    blobs = list(ImageEmbedding.objects.filter(space=space).values_list("vector", flat=True))
    assert {len(bytes(b)) for b in blobs} == {space.dim * 2}
    norms = [float(np.linalg.norm(np.frombuffer(bytes(b), "<f2").astype(np.float32))) for b in blobs]
    assert max(abs(n - 1) for n in norms) <= 1e-3
    again = _embed(space)
    assert (again.counts.get("skipped"), again.counts.get("embedded", 0)) == (5, 0)
    assert ImageEmbedding.objects.filter(space=space).count() == len(items)
    assert EmbeddingSpace.objects.get(pk=space.pk).embedding_count == 5


def test_stored_vectors_match_the_engine_on_the_same_file(space: EmbeddingSpace, tiny_mirror: Path) -> None:
    import io

    from django.core.files.storage import default_storage

    (item,) = _items(1)
    _embed(space)
    backend = embeddings.backend_for(space)
    with default_storage.open(item.storage_key, "rb") as handle:
        direct = backend.embed([backend.preprocess(io.BytesIO(handle.read()))])[0]
    stored = np.frombuffer(bytes(ImageEmbedding.objects.get(item=item).vector), "<f2")
    assert np.array_equal(stored, direct)


def test_a_query_chooses_the_items(space: EmbeddingSpace) -> None:
    items = _items(3)
    job = _embed(space, item_ids=[items[0].pk, items[2].pk])
    assert set(ImageEmbedding.objects.values_list("item_id", flat=True)) == {items[0].pk, items[2].pk}
    assert job.progress_total == 2


def test_other_weights_fail_the_job_and_write_nothing(space: EmbeddingSpace, model_dir: Path) -> None:
    """§10.5: weights whose sha256 is not the space's raise EmbeddingSpaceMismatch; 0 rows."""
    _items(2)
    weights = model_dir / "open_clip/tiny/open_clip_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    job = _embed(space)
    assert (job.status, job.error_code) == ("failed", "taggers.space_mismatch")
    assert ImageEmbedding.objects.count() == 0


def test_missing_weights_fail_the_job_unretried(space: EmbeddingSpace, model_dir: Path) -> None:
    """§10.32: the job fails with ModelNotProvisioned naming the file (a DomainError: no retry)."""
    _items(1)
    job = spaces.space_embed(space=space)
    shutil.rmtree(model_dir / "open_clip/tiny")
    embeddings.embed_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == ("failed", "taggers.model_not_provisioned", 1)
    assert "open_clip_model.safetensors" in job.error_message


def test_a_stopped_job_resumes_without_duplicates(space: EmbeddingSpace, settings) -> None:
    """A job cut off after its first batch embeds only the rest when it runs again."""
    settings.BAGGINTAG_ML_BATCH = 2
    items = _items(5)
    job = spaces.space_embed(space=space)
    embeddings.embed_run(job_id=job.pk)
    first = {i: bytes(v) for i, v in ImageEmbedding.objects.values_list("item_id", "vector")}
    ImageEmbedding.objects.filter(item_id__in=[i.pk for i in items[2:]]).delete()
    Job.objects.filter(pk=job.pk).update(status="queued", result={"cursor": items[1].pk})
    embeddings.embed_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded"
    rows = list(ImageEmbedding.objects.values_list("item_id", "vector"))
    assert sorted(i for i, _ in rows) == sorted(i.pk for i in items)
    assert {i: bytes(v) for i, v in rows} == first


def test_an_undecodable_file_fails_that_item_only(space: EmbeddingSpace) -> None:
    from django.core.files.storage import default_storage

    good, bad = _items(2)
    default_storage.delete(bad.storage_key)
    with default_storage.open(bad.storage_key, "wb") as handle:
        handle.write(b"not a picture")
    job = _embed(space)
    assert (job.status, job.counts.get("failed"), job.counts.get("embedded")) == ("succeeded", 1, 1)
    assert list(ImageEmbedding.objects.values_list("item_id", flat=True)) == [good.pk]


def test_the_embed_endpoint_answers_202_with_the_job(api, space: EmbeddingSpace) -> None:
    response = api.post(f"/api/embedding-spaces/{space.pk}/embed", {"query": "rating:g"}, format="json")
    assert response.status_code == 202
    assert response.json()["job"]["kind"] == "taggers.embed"


def test_embedding_another_selection_while_one_runs_is_a_409(api, space: EmbeddingSpace) -> None:
    url = f"/api/embedding-spaces/{space.pk}/embed"
    first = api.post(url, {"query": "rating:g"}, format="json").json()["job"]["id"]
    same = api.post(url, {"query": "rating:g"}, format="json")
    other = api.post(url, {"query": "rating:e"}, format="json")
    assert same.status_code == 202
    assert same.json()["job"]["id"] == first  # the same selection: the running job
    assert other.status_code == 409
    assert other.json()["code"] == "taggers.embed_running"
    assert other.json()["details"] == {"job": first}
    assert Job.objects.filter(kind="taggers.embed").count() == 1


def test_a_bad_embed_query_is_a_400(api, space: EmbeddingSpace) -> None:
    response = api.post(f"/api/embedding-spaces/{space.pk}/embed", {"query": "width:abc"}, format="json")
    assert response.status_code == 400


def test_a_space_used_by_a_tagger_cannot_be_deleted(api, space: EmbeddingSpace) -> None:
    from apps.taggers.models import Tagger
    from apps.tags.selectors.vocabularies import vocabulary_default

    Tagger.objects.create(
        name="t", vocabulary=vocabulary_default(), kind="embedding_head", embedding_space=space
    )
    assert api.delete(f"/api/embedding-spaces/{space.pk}").status_code == 409
    assert EmbeddingSpace.objects.filter(pk=space.pk).exists()


def test_pages_list_and_show_a_space(client, curator, space: EmbeddingSpace) -> None:
    client.force_login(curator)
    listing = client.get("/taggers/spaces/")
    assert listing.status_code == 200
    assert space.name in listing.content.decode()
    detail = client.get(f"/taggers/spaces/{space.pk}/")
    assert 'clip:"a red circle"' in detail.content.decode()


def test_the_page_embeds_and_shows_progress(client, curator, space: EmbeddingSpace) -> None:
    _items(1)
    client.force_login(curator)
    response = client.post(f"/taggers/spaces/{space.pk}/embed", {"query": ""})
    assert response.status_code == 303
    page = client.get(f"/taggers/spaces/{space.pk}/").content.decode()
    assert 'class="job-progress"' in page


def test_the_page_form_names_missing_files(client, curator, model_dir: Path) -> None:
    client.force_login(curator)
    response = client.post(
        "/taggers/spaces/", {"name": "x", "model_ref": "local-dir:open_clip/none", "resize_mode": "squash"}
    )
    assert response.status_code == 422
    assert "open_clip/none/open_clip_config.json" in response.content.decode()


def test_a_cpu_host_refuses_a_job_estimated_over_the_limit(space: EmbeddingSpace, settings) -> None:
    settings.BAGGINTAG_ML_BATCH = 2
    settings.BAGGINTAG_CPU_JOB_LIMIT_S = 0
    _items(5)
    job = _embed(space)
    assert (job.status, job.error_code) == ("failed", "taggers.cpu_job_too_long")
    assert "GPU" in job.error_message
    assert ImageEmbedding.objects.count() == 2
