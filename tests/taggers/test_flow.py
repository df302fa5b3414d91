"""A real Celery worker on the ML queues runs the embed job and encodes a text search
(docs/taggers.md#embed-jobs); with non-loopback sockets blocked and the HF offline variables set."""

from __future__ import annotations

import time

import pytest

from apps.jobs.models import Job
from apps.search.query import search_ids
from apps.taggers.models import ImageEmbedding
from tests.media.factories import make_item
from tests.taggers import factories

pytestmark = pytest.mark.flow


def _finished(job_id: int, seconds: float = 120) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).status}")


def test_a_worker_embeds_in_batches_and_answers_text_search(ml_worker, api, space, settings, curator) -> None:
    settings.BAGGINTAG_ML_BATCH = 3
    settings.BAGGINTAG_TEXT_QUERY_WAIT_S = 60
    colours = [(220, 30, 30), (30, 180, 40), (30, 60, 220)]
    items = [make_item(data=factories.solid_png(colours[n % 3], seed=n)) for n in range(7)]
    accepted = api.post(f"/api/embedding-spaces/{space.pk}/embed", {}, format="json")
    assert accepted.status_code == 202
    job = _finished(accepted.json()["job"]["id"])
    assert (job.status, job.counts.get("embedded"), job.progress_done) == ("succeeded", 7, 7)
    assert sorted(ImageEmbedding.objects.values_list("item_id", flat=True)) == sorted(i.pk for i in items)
    again = api.post(f"/api/embedding-spaces/{space.pk}/embed", {}, format="json")
    second = _finished(again.json()["job"]["id"])
    assert (second.counts.get("skipped"), ImageEmbedding.objects.count()) == (7, 7)
    ids = _searched('clip:"a red picture"', curator)
    assert sorted(ids) == sorted(i.pk for i in items)


def _searched(q: str, viewer) -> list[int]:
    """The first search finds no matrix build and queues one (taggers.cache_space, 409
    taggers.matrix_pending); the worker builds it and a later search answers."""
    from apps.taggers.services.similarity import MatrixPending

    deadline = time.monotonic() + 60
    while True:
        try:
            return search_ids(q=q, viewer=viewer)
        except MatrixPending:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
