"""End to end with a real worker (§10 item 35, docs/taggers.md#training): the synthetic shapes
and colours pictures are ingested, embedded by the tiny model's embed job, 180 are curated with
all six tags reviewed, a head is trained and run on the other 60 by the worker, and its colour
tags are scored against the truth. The random tiny encoder keeps colour, not shape, so shapes
are the negative control."""

from __future__ import annotations

import time

import numpy as np
import pytest

from apps.jobs.models import Job
from apps.taggers.engine.evaluate import masked_ap
from apps.taggers.models import ReviewMark, Tagger
from apps.taggers.selectors.predictions import predictions
from apps.tags.models import TagAssignment, TagSet
from tests.media.factories import make_item
from tests.taggers import factories
from tests.tags.factories import assign, tag_type, tags_make

pytestmark = [pytest.mark.flow, pytest.mark.slow]
COLOURS = ("red", "green", "blue")
SHAPES = ("circle", "square", "triangle")
LABELLED, UNLABELLED = 180, 60


def _finished(job_id: int, seconds: float = 600) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).status}")


def _curated() -> list[tuple[int, int, int]]:
    return sorted(
        TagAssignment.objects.filter(kind=TagSet.Kind.CURATED).values_list("tagset_id", "tag_id", "state")
    )


def test_trained_head_finds_colours_on_unlabelled_pictures(ml_worker, api, space) -> None:
    pictures = [factories.shapes_picture(seed) for seed in range(LABELLED + UNLABELLED)]
    items = [make_item(data=data) for data, _truth in pictures]
    embedded = _finished(
        api.post(f"/api/embedding-spaces/{space.pk}/embed", {}, format="json").json()["job"]["id"]
    )
    assert embedded.status == "succeeded"
    tags = tags_make([*COLOURS, *SHAPES])
    labelled = items[:LABELLED]
    pairs = zip(labelled, pictures, strict=False)
    assign([(item.pk, TagSet.Kind.CURATED, tags[n].pk) for item, (_d, truth) in pairs for n in sorted(truth)])
    ReviewMark.objects.bulk_create([ReviewMark(item=item, tag_type=tag_type("general")) for item in labelled])
    created = api.post(
        "/api/taggers/",
        {"name": "shapes", "embedding_space": space.pk, "stored_threshold": 0.01},
        format="json",
    ).json()
    before = _curated()
    trained = _finished(
        api.post(f"/api/taggers/{created['id']}/train", {"seed": 0}, format="json").json()["job"]["id"]
    )
    assert trained.status == "succeeded", trained.error_message
    unlabelled = items[LABELLED:]
    ran = api.post(f"/api/taggers/{created['id']}/run", {"items": [i.pk for i in unlabelled]}, format="json")
    scored = _finished(ran.json()["job"]["id"])
    assert (scored.status, scored.result["scored"]) == ("succeeded", UNLABELLED)
    assert _curated() == before
    version = Tagger.objects.get(pk=created["id"]).active_version
    assert version is not None
    rows = {(a.media_item_id, a.tag_id): (a.confidence or 0) / 10_000 for a in predictions(version=version)}
    scores = np.array([[rows.get((i.pk, tags[n].pk), 0.0) for n in (*COLOURS, *SHAPES)] for i in unlabelled])
    truth = np.array(
        [[int(n in t) for n in (*COLOURS, *SHAPES)] for _d, t in pictures[LABELLED:]], dtype=np.int8
    )
    ap = masked_ap(scores, truth)
    colour_ap, shape_ap = ap[:3], ap[3:]
    assert min(colour_ap) >= 0.80, ap
    assert float(np.nanmean(colour_ap) - np.nanmean(shape_ap)) >= 0.20, ap
    assert TagSet.objects.filter(kind=TagSet.Kind.TAGGER, media_item__in=unlabelled).count() == UNLABELLED
