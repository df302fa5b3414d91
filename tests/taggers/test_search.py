"""The matrix cache (§10 check 7) and search by embedding through the query language:
`similar:<id>,emb` and `clip:"…"` (docs/taggers.md#similarity-search)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apps.jobs.models import Job
from apps.search.query import search_ids
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, TextQuery
from apps.taggers.services import embeddings, matrix, similarity, spaces
from tests.media.factories import make_item
from tests.taggers import factories

pytestmark = pytest.mark.django_db
RED, GREEN, BLUE = (220, 30, 30), (30, 180, 40), (30, 60, 220)


@pytest.fixture
def library(space: EmbeddingSpace) -> dict[str, list[int]]:
    """Four flat pictures per colour, embedded."""
    found: dict[str, list[int]] = {}
    for name, colour in (("red", RED), ("green", GREEN), ("blue", BLUE)):
        found[name] = [make_item(data=factories.solid_png(colour, seed=n)).pk for n in range(4)]
    job = spaces.space_embed(space=space)
    embeddings.embed_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).status == "succeeded"
    matrix.matrix_space_refresh(space_id=space.pk)  # what the taggers.cache_space worker does
    return found


def _manifest(space: EmbeddingSpace) -> dict:
    return json.loads((matrix.cache_dir(space.pk) / "manifest.json").read_text())


def test_the_cache_holds_every_vector_in_id_order(space: EmbeddingSpace, library) -> None:
    loaded = matrix.matrix_load(space=space)
    assert list(loaded.ids) == sorted(i for ids in library.values() for i in ids)
    assert loaded.vectors.dtype == np.dtype("<f2")
    assert loaded.vectors.shape == (12, 32)


def test_adding_one_embedding_rebuilds_the_cache(space: EmbeddingSpace, library) -> None:
    """§10.7 (add)."""
    matrix.matrix_load(space=space)
    before = _manifest(space)
    extra = make_item(data=factories.solid_png(RED, seed=99))
    ImageEmbedding.objects.create(item=extra, space=space, vector=np.ones(32, "<f2").tobytes())
    loaded = matrix.matrix_load(space=space)
    assert _manifest(space)["build"] != before["build"]
    assert extra.pk in set(loaded.ids.tolist())


def test_deleting_one_embedding_rebuilds_the_cache(space: EmbeddingSpace, library) -> None:
    """§10.7 (delete)."""
    matrix.matrix_load(space=space)
    before = _manifest(space)
    gone = library["red"][0]
    ImageEmbedding.objects.filter(item_id=gone).delete()
    loaded = matrix.matrix_load(space=space)
    assert _manifest(space)["build"] != before["build"]
    assert gone not in set(loaded.ids.tolist())
    assert len(loaded) == 11


def test_a_fresh_cache_is_not_rebuilt(space: EmbeddingSpace, library) -> None:
    matrix.matrix_load(space=space)
    before = _manifest(space)
    matrix.matrix_load(space=space)
    assert _manifest(space)["build"] == before["build"]


def test_a_blob_of_the_wrong_size_is_refused(space: EmbeddingSpace, library) -> None:
    from apps.taggers.engine.base import EmbeddingSpaceMismatch

    ImageEmbedding.objects.filter(item_id=library["red"][0]).update(vector=b"\0" * 10)
    matrix.matrix_drop(space_id=space.pk)  # the fixture built it already
    with pytest.raises(EmbeddingSpaceMismatch):
        matrix.matrix_load(space=space)


def test_similar_by_embedding_puts_the_same_colour_first(space: EmbeddingSpace, library, curator) -> None:
    red = library["red"]
    ids = search_ids(q=f"similar:{red[0]},emb,4", viewer=curator)
    assert ids[0] == red[0]
    assert set(ids) == set(red)


def test_similar_by_embedding_combines_with_other_terms(space: EmbeddingSpace, library, curator) -> None:
    red = library["red"]
    ids = search_ids(q=f"similar:{red[0]},emb id:>{red[1]}", viewer=curator)
    assert red[0] not in ids
    assert set(red[2:]) <= set(ids)


def test_similar_on_an_item_without_a_vector_says_how(space: EmbeddingSpace, library, api) -> None:
    other = make_item(data=factories.solid_png(RED, seed=77))
    response = api.get("/api/media/", {"q": f"similar:{other.pk},emb"})
    assert response.status_code == 400
    assert "no embedding" in response.json()["message"]


def test_a_bad_similar_mode_value_is_a_400(space: EmbeddingSpace, library, api) -> None:
    response = api.get("/api/media/", {"q": f"similar:{library['red'][0]},emb,0"})
    assert response.status_code == 400
    assert "1 to 5000" in response.json()["message"]


def test_perceptual_similar_still_works(space: EmbeddingSpace, library, curator) -> None:
    red = library["red"][0]
    assert red in search_ids(q=f"similar:{red}", viewer=curator)


def test_clip_text_waits_for_a_worker_and_says_so(space: EmbeddingSpace, library, api, settings) -> None:
    """No worker encodes the text within the wait: 409 explaining what to do; the text is kept."""
    settings.BAGGINTAG_TEXT_QUERY_WAIT_S = 0
    response = api.get("/api/media/", {"q": 'clip:"a red square"'})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "taggers.text_query_pending"
    assert "ml_cpu" in body["message"]
    assert TextQuery.objects.filter(text="a red square", vector__isnull=True).count() == 1


def test_clip_text_ranks_items_once_encoded(space: EmbeddingSpace, library, curator, settings) -> None:
    settings.BAGGINTAG_TEXT_QUERY_WAIT_S = 0
    with pytest.raises(similarity.TextQueryPending):
        search_ids(q='clip:"red"', viewer=curator)
    similarity.text_query_encode(text_query_id=TextQuery.objects.get(text="red").pk)
    ids = search_ids(q='clip:"red"', viewer=curator)
    assert sorted(ids) == sorted(i for v in library.values() for i in v)
    backend = embeddings.backend_for(space)
    text = backend.encode_text(["red"])[0]
    loaded = matrix.matrix_load(space=space)
    scores = {
        int(i): float(v.astype(np.float32) @ text) for i, v in zip(loaded.ids, loaded.vectors, strict=True)
    }
    assert ids == sorted(scores, key=lambda i: (-scores[i], i))


def test_an_empty_clip_text_is_a_400(space: EmbeddingSpace, library, api) -> None:
    response = api.get("/api/media/", {"q": 'clip:""'})
    assert response.status_code == 400


def test_clip_without_a_text_space_says_how(db, api) -> None:
    response = api.get("/api/media/", {"q": 'clip:"red"'})
    assert response.status_code == 400
    assert "text tower" in response.json()["message"]


def test_the_api_pages_a_ranked_search_in_rank_order(space: EmbeddingSpace, library, api) -> None:
    red = library["red"]
    first = api.get("/api/media/", {"q": f"similar:{red[0]},emb,4", "limit": 2, "count": "exact"})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] == 4
    second = api.get(
        "/api/media/", {"q": f"similar:{red[0]},emb,4", "limit": 2, "cursor": body["next_cursor"]}
    )
    ids = [r["id"] for r in body["results"]] + [r["id"] for r in second.json()["results"]]
    expected = search_ids(q=f"similar:{red[0]},emb,4", viewer=None)
    assert ids == expected
    assert ids[0] == red[0]


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Tasks the web process hands to the broker (recorded, not sent)."""
    from celery import current_app

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, kwargs=None, **_: calls.append((name, kwargs)))
    return calls


def test_without_a_matrix_build_search_is_a_409_and_queues_one(
    space: EmbeddingSpace, library, api, sent
) -> None:
    matrix.matrix_drop(space_id=space.pk)
    response = api.get("/api/media/", {"q": f"similar:{library['red'][0]},emb,4"})
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "taggers.matrix_pending"
    assert sent == [("taggers.cache_space", {"space_id": space.pk})]
    assert not (matrix.cache_dir(space.pk) / "manifest.json").exists()  # nothing built in the request


def test_a_stale_build_answers_as_it_is_and_queues_one_rebuild(
    space: EmbeddingSpace, library, curator, sent
) -> None:
    before = _manifest(space)
    extra = make_item(data=factories.solid_png(RED, seed=99))
    ImageEmbedding.objects.create(
        item=extra,
        space=space,
        vector=matrix.decode_blob(
            ImageEmbedding.objects.get(item_id=library["red"][0], space=space).vector, space.dim
        ).tobytes(),
    )
    EmbeddingSpace.objects.filter(pk=space.pk).update(embedding_count=13)  # as an embed job does
    first = search_ids(q=f"similar:{library['red'][0]},emb,5", viewer=curator)
    second = search_ids(q=f"similar:{library['red'][0]},emb,5", viewer=curator)
    assert extra.pk not in first
    assert first == second
    assert _manifest(space)["build"] == before["build"]
    assert sent == [("taggers.cache_space", {"space_id": space.pk})]  # once per minute and host
    from apps.taggers.tasks import cache_space_task

    assert cache_space_task(space_id=space.pk) == 13
    assert extra.pk in search_ids(q=f"similar:{library['red'][0]},emb,5", viewer=curator)
