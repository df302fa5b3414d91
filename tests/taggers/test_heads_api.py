"""The taggers API (`/api/taggers/`, docs/api.md#taggers): define, train, versions, promotion,
rollback, thresholds, predictions, review; bad input answers 4xx with a message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from apps.jobs.models import Job
from apps.taggers.models import EmbeddingSpace, ImageEmbedding, ReviewMark, Tagger, TaggerVersion
from apps.taggers.services import apply, training
from apps.tags.models import TagSet
from tests.tags.factories import assign, items_make, tag_type, tags_make

pytestmark = pytest.mark.django_db
URL = "/api/taggers/"


@pytest.fixture
def labelled(space: EmbeddingSpace) -> list[int]:
    """120 embedded items; tag_x on the 40 with the largest first coordinate, all reviewed."""
    EmbeddingSpace.objects.filter(pk=space.pk).update(has_text_tower=False)
    items = items_make(120)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((120, space.dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(item=i, space=space, vector=x[n].astype("<f2").tobytes())
            for n, i in enumerate(items)
        ]
    )
    tag = tags_make(["tag_x"])["tag_x"]
    assign([(items[n].pk, TagSet.Kind.CURATED, tag.pk) for n in np.argsort(-x[:, 0])[:40]])
    ReviewMark.objects.bulk_create([ReviewMark(item=i, tag_type=tag_type("general")) for i in items])
    return [i.pk for i in items]


def define(api: Any, space: EmbeddingSpace, **extra: Any) -> dict[str, Any]:
    body = {"name": "heads", "embedding_space": space.pk, "params": {"min_steps": 100, "max_steps": 100}}
    response = api.post(URL, {**body, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def trained(api: Any, space: EmbeddingSpace) -> dict[str, Any]:
    tagger = define(api, space)
    response = api.post(f"{URL}{tagger['id']}/train", {"seed": 1}, format="json")
    assert response.status_code == 202, response.content
    training.train_run(job_id=response.json()["job"]["id"])
    return tagger


def test_define_a_head_tagger(api: Any, space: EmbeddingSpace) -> None:
    assert define(api, space)["network_type"] == "linear"


def test_define_without_a_space_is_400(api: Any) -> None:
    response = api.post(URL, {"name": "nospace"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "taggers.no_space")


def test_define_twice_is_409(api: Any, space: EmbeddingSpace) -> None:
    define(api, space)
    assert api.post(URL, {"name": "heads", "embedding_space": space.pk}, format="json").status_code == 409


def test_unknown_network_type_is_400(api: Any, space: EmbeddingSpace) -> None:
    response = api.post(URL, {"name": "x", "embedding_space": space.pk, "network_type": "vit"}, format="json")
    assert response.status_code == 400


def test_unknown_tagger_is_404(api: Any) -> None:
    assert api.post(f"{URL}999999/train", {}, format="json").status_code == 404


def test_training_without_labels_is_400_with_a_message(api: Any, space: EmbeddingSpace) -> None:
    items = items_make(2)
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(item=i, space=space, vector=np.zeros(space.dim, "<f2").tobytes()) for i in items]
    )
    tagger = define(api, space)
    response = api.post(f"{URL}{tagger['id']}/train", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "taggers.no_labels")


def test_training_without_vectors_is_409(api: Any, space: EmbeddingSpace) -> None:
    tagger = define(api, space)
    assert api.post(f"{URL}{tagger['id']}/train", {}, format="json").status_code == 409


def test_train_answers_202_with_a_queued_version(
    api: Any, space: EmbeddingSpace, labelled: list[int]
) -> None:
    tagger = define(api, space)
    response = api.post(f"{URL}{tagger['id']}/train", {}, format="json")
    assert (response.status_code, response.json()["version"]["status"]) == (202, "queued")


def test_train_again_while_queued_returns_the_same_version(
    api: Any, space: EmbeddingSpace, labelled: list[int]
) -> None:
    tagger = define(api, space)
    first = api.post(f"{URL}{tagger['id']}/train", {}, format="json").json()
    again = api.post(f"{URL}{tagger['id']}/train", {}, format="json").json()
    assert first["version"]["id"] == again["version"]["id"]


def test_versions_list_shows_metrics(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    rows = api.get(f"{URL}{tagger['id']}/versions").json()
    assert rows[0]["metrics"]["n_tags_evaluated"] == 1


def test_trained_tagger_is_active(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    assert api.get(f"{URL}{tagger['id']}/").json()["active_version"] == 1


def test_promoting_a_failed_version_is_409(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    TaggerVersion.objects.create(tagger_id=tagger["id"], number=2, status=TaggerVersion.Status.FAILED)
    response = api.post(f"{URL}{tagger['id']}/promote", {"version": 2}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "taggers.version_not_ready")


def test_promoting_an_unknown_version_is_404(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    assert api.post(f"{URL}{tagger['id']}/promote", {"version": 7}, format="json").status_code == 404


def test_rollback_without_a_previous_version_is_409(
    api: Any, space: EmbeddingSpace, labelled: list[int]
) -> None:
    tagger = trained(api, space)
    assert api.post(f"{URL}{tagger['id']}/rollback", {}, format="json").status_code == 409


def test_run_answers_202_with_a_score_job(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    response = api.post(f"{URL}{tagger['id']}/run", {"items": labelled[:10]}, format="json")
    assert (response.status_code, response.json()["job"]["kind"]) == (202, "taggers.score")


def test_run_with_a_bad_query_is_400(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = trained(api, space)
    assert api.post(f"{URL}{tagger['id']}/run", {"query": "width:>"}, format="json").status_code == 400


def scored(api: Any, space: EmbeddingSpace, labelled: list[int]) -> dict[str, Any]:
    tagger = trained(api, space)
    version = Tagger.objects.get(pk=tagger["id"]).active_version
    assert version is not None
    apply.score_items(version=version, item_ids=labelled)
    return tagger


def test_threshold_override_changes_effective_predictions_without_jobs(
    api: Any, space: EmbeddingSpace, labelled: list[int]
) -> None:
    tagger = scored(api, space, labelled)
    tag_id = api.get(f"{URL}{tagger['id']}/predictions", {"limit": 1}).json()[0]["tag"]
    before = len(api.get(f"{URL}{tagger['id']}/predictions", {"effective": "true", "limit": 500}).json())
    jobs = Job.objects.count()
    response = api.post(f"{URL}{tagger['id']}/thresholds", {"tag": tag_id, "threshold": 0.999}, format="json")
    after = len(api.get(f"{URL}{tagger['id']}/predictions", {"effective": "true", "limit": 500}).json())
    assert (response.status_code, after < before, Job.objects.count()) == (200, True, jobs)


def test_threshold_out_of_range_is_400(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = scored(api, space, labelled)
    response = api.post(f"{URL}{tagger['id']}/thresholds", {"tag": 1, "threshold": 2}, format="json")
    assert response.status_code == 400


def test_predictions_page_by_keyset(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = scored(api, space, labelled)
    first = api.get(f"{URL}{tagger['id']}/predictions", {"limit": 5}).json()
    last = first[-1]
    second = api.get(
        f"{URL}{tagger['id']}/predictions", {"limit": 5, "after_item": last["item"], "after_tag": last["tag"]}
    ).json()
    assert second[0]["item"] > last["item"]


def test_review_reject_then_accept_reports_the_tombstone(
    api: Any, space: EmbeddingSpace, labelled: list[int]
) -> None:
    tagger = scored(api, space, labelled)
    queue = api.get(f"{URL}{tagger['id']}/review").json()
    assert queue, "the queue has undecided predictions"
    body = {"item": queue[0]["item"], "tag": queue[0]["tag"]}
    assert api.post(f"{URL}{tagger['id']}/review/reject", body, format="json").status_code == 200
    accepted = api.post(f"{URL}{tagger['id']}/review/accept", body, format="json").json()
    assert accepted["blocked_by_tombstone"] == ["tag_x"]


def test_review_of_an_unpredicted_item_is_404(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = scored(api, space, labelled)
    extra = items_make(1)[0]
    body = {"item": extra.pk, "tag": 1}
    assert api.post(f"{URL}{tagger['id']}/review/accept", body, format="json").status_code == 404


def test_batch_accept_with_a_bad_bar_is_400(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = scored(api, space, labelled)
    response = api.post(f"{URL}{tagger['id']}/review/batch-accept", {"min_confidence": 3}, format="json")
    assert response.status_code == 400


def test_agreement_lists_the_tag(api: Any, space: EmbeddingSpace, labelled: list[int]) -> None:
    tagger = scored(api, space, labelled)
    rows = api.get(f"{URL}{tagger['id']}/review/agreement").json()
    assert [r["name"] for r in rows] == ["tag_x"]


def test_reader_cannot_train(viewer: Any, space: EmbeddingSpace) -> None:
    from rest_framework.test import APIClient

    tagger = Tagger.objects.create(
        name="ro", vocabulary_id=1, kind=Tagger.Kind.EMBEDDING_HEAD, embedding_space=space
    )
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post(f"{URL}{tagger.pk}/train", {}, format="json").status_code == 403


def test_run_with_over_100000_ids_is_a_400_too_many(api: Any, space: EmbeddingSpace) -> None:
    from tests.taggers.wd_fixtures import tagger_make

    tagger = tagger_make("heads-ready", "embedding_head")
    jobs = Job.objects.count()
    response = api.post(f"{URL}{tagger.pk}/run", {"items": list(range(1, 100_002))}, format="json")
    body = response.json()
    assert response.status_code == 400, body
    assert body["code"] == "taggers.too_many"
    assert body["details"] == {"limit": 100_000, "given": 100_001}
    assert Job.objects.count() == jobs


def test_the_service_refuses_over_100000_ids_before_reading_anything(space: EmbeddingSpace) -> None:
    from apps.core.exceptions import DomainError
    from tests.taggers.wd_fixtures import tagger_make

    tagger = tagger_make("heads-ready", "embedding_head")
    with pytest.raises(DomainError) as caught:
        apply.tagger_run(tagger=tagger, ids=range(1, 100_002))  # type: ignore[arg-type]
    assert caught.value.code == "taggers.too_many"
