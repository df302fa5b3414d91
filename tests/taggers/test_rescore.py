"""Re-scoring on promotion (docs/taggers.md#re-scoring-on-promotion): making a head's version
active (automatically after training, by promote or by rollback) queues a `taggers.score` job
over the items the tagger covers, so its tagger set of that version is filled."""

from __future__ import annotations

import pytest

from apps.jobs.models import Job
from apps.taggers.models import EmbeddingSpace, Tagger, TaggerVersion
from apps.taggers.services import apply, taggers, training, versions
from apps.tags.models import TagSet
from tests.media.factories import make_item
from tests.taggers.factories import planted_head

pytestmark = pytest.mark.django_db
N = 60


@pytest.fixture
def head(space: EmbeddingSpace):
    return planted_head(space, N)


def _sets(version: TaggerVersion) -> int:
    slot = f"{version.tagger.name}@{version.number}"
    return TagSet.objects.filter(kind=TagSet.Kind.TAGGER, slot=slot).count()


def _job(tagger: Tagger) -> Job:
    tagger.refresh_from_db()
    return Job.objects.get(pk=tagger.rescore_job_id)


def _second(head) -> TaggerVersion:
    """A worse version 2 (stays inactive)."""
    head["tagger"].refresh_from_db()
    worse = {"min_steps": 1, "max_steps": 1, "lr": 1e-7}
    Tagger.objects.filter(pk=head["tagger"].pk).update(params={**head["tagger"].params, **worse})
    version = training.tagger_train(tagger=head["tagger"], seed=1)
    training.train_run(job_id=version.job_id)
    version.refresh_from_db()
    head["tagger"].refresh_from_db()
    assert head["tagger"].active_version_id == head["version"].pk
    return version


def test_the_first_version_auto_promotes_and_rescores_every_covered_item(head) -> None:
    job = _job(head["tagger"])
    assert (job.params["task"], job.params["version"]) == ("taggers.score", head["version"].pk)
    make_item()  # an item without a vector is not covered
    apply.score_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.result["scored"], job.progress_total) == (Job.Status.SUCCEEDED, N, N)
    assert _sets(head["version"]) == N


def test_promoting_queues_a_rescore_of_the_new_version_and_cancels_the_stale_one(head) -> None:
    first = _job(head["tagger"])
    second = _second(head)
    tagger = versions.version_promote(tagger=head["tagger"], number=second.number)
    job = Job.objects.get(pk=tagger.rescore_job_id)
    first.refresh_from_db()
    assert first.status == Job.Status.CANCELLED
    assert job.params["version"] == second.pk
    apply.score_run(job_id=job.pk)
    assert _sets(second) == N


def test_rollback_rescores_the_previous_version(head) -> None:
    second = _second(head)
    versions.version_promote(tagger=head["tagger"], number=second.number)
    tagger = versions.version_rollback(tagger=head["tagger"])
    job = Job.objects.get(pk=tagger.rescore_job_id)
    assert (tagger.active_version_id, job.params["version"]) == (head["version"].pk, head["version"].pk)


def test_promoting_the_active_version_again_queues_nothing(head) -> None:
    before = Job.objects.count()
    versions.version_promote(tagger=head["tagger"], number=head["version"].number)
    assert Job.objects.count() == before


def test_the_scope_query_narrows_what_is_rescored(head) -> None:
    second = _second(head)
    cut = head["items"][N // 3 - 1].pk
    Tagger.objects.filter(pk=head["tagger"].pk).update(scope={"query": f"id:<={cut}"})
    tagger = versions.version_promote(tagger=head["tagger"], number=second.number)
    job = Job.objects.get(pk=tagger.rescore_job_id)
    apply.score_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress_total == _sets(second) == N // 3


def test_a_bad_scope_query_fails_the_job_with_its_code(head) -> None:
    second = _second(head)
    Tagger.objects.filter(pk=head["tagger"].pk).update(scope={"query": "((("})
    tagger = versions.version_promote(tagger=head["tagger"], number=second.number)
    job = Job.objects.get(pk=tagger.rescore_job_id)
    apply.score_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Job.Status.FAILED, "taggers.bad_query")
    assert _sets(second) == 0


def test_a_version_of_another_space_is_promoted_without_rescoring(head, space) -> None:
    other = EmbeddingSpace.objects.create(name="other", model_ref=space.model_ref + "-x", dim=space.dim)
    second = _second(head)
    TaggerVersion.objects.filter(pk=second.pk).update(space=other)  # as if trained before a change
    before = Job.objects.count()
    tagger = versions.version_promote(tagger=head["tagger"], number=second.number)
    assert "another embedding space" in tagger.rescore_skipped
    assert tagger.rescore_job is None
    assert Job.objects.count() == before


def test_promote_over_the_api_answers_with_the_rescore_job(api, head) -> None:
    second = _second(head)
    response = api.post(
        f"/api/taggers/{head['tagger'].pk}/promote", {"version": second.number}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    job = Job.objects.get(pk=body["rescore_job"]["id"])
    assert job.params["version"] == second.pk
    assert (body["previous_version"], body["rescore_skipped"]) == (head["version"].number, "")
    assert "rescore_job" not in body["params"]


def _score_jobs() -> list[Job]:
    return list(Job.objects.filter(kind="taggers.score").order_by("pk"))


def test_saving_params_keeps_the_rescore_job_and_the_rollback_target(head) -> None:
    second = _second(head)
    versions.version_promote(tagger=head["tagger"], number=second.number)
    head["tagger"].refresh_from_db()
    job_id = head["tagger"].rescore_job_id
    assert job_id is not None
    tagger = taggers.tagger_update(tagger=head["tagger"], params={"lr": 0.01})
    tagger.refresh_from_db()
    assert tagger.params == {"lr": 0.01}
    assert (tagger.rescore_job_id, tagger.previous_version_id) == (job_id, head["version"].pk)
    rolled = versions.version_rollback(tagger=tagger)
    assert rolled.active_version_id == head["version"].pk


def test_saving_params_over_the_api_keeps_the_rescore_job_which_it_cannot_set(api, head) -> None:
    job_id = head["tagger"].rescore_job_id
    url = f"/api/taggers/{head['tagger'].pk}"
    # The job is read-only over the API: a client sending it changes nothing.
    response = api.patch(url, {"params": {"lr": 0.02}, "rescore_job": None}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["params"] == {"lr": 0.02}
    assert (body["rescore_job"]["id"], body["rescore_skipped"]) == (job_id, "")
    head["tagger"].refresh_from_db()
    assert head["tagger"].rescore_job_id == job_id


def test_promotion_queues_exactly_one_rescore(head) -> None:
    second = _second(head)
    before = {j.pk for j in _score_jobs()}
    tagger = versions.version_promote(tagger=head["tagger"], number=second.number)
    new = [j for j in _score_jobs() if j.pk not in before]
    assert [j.pk for j in new] == [tagger.rescore_job_id]
    assert new[0].params["version"] == second.pk
    queued = [j for j in _score_jobs() if j.status not in Job.FINISHED]
    assert [j.pk for j in queued] == [tagger.rescore_job_id]
