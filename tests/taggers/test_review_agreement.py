"""Reviewer agreement and the review queue (docs/taggers.md#review): agreement per tag (accepted /
rejected / missed) is one grouped SQL aggregate; the queue is keyset-paged (no OFFSET)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.taggers.selectors import predictions as pred
from apps.tags.models import TagAssignment, TagSet
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import tagger_make
from tests.tags.factories import assign, tagger_set_make, tags_make

pytestmark = pytest.mark.django_db
CURATED = TagSet.Kind.CURATED
DELETED = TagAssignment.State.DELETED


def test_agreement_counts_per_tag_in_one_grouped_query() -> None:
    tagger = tagger_make("heads", "embedding_head")
    items = [make_item(seed=n) for n in range(5)]
    # Default threshold 0.35: 9000 is effective, 1000 is not.
    scores = [
        {"cat": 9000, "dog": 9000},  # cat accepted, dog rejected
        {"cat": 9000, "dog": 1000},  # cat undecided, dog missed
        {"cat": 1000},  # cat missed
        {"cat": 9000},  # cat accepted
        {"dog": 9000},  # dog undecided
    ]
    sets = [
        tagger_set_make(item, s, model="heads", version="1") for item, s in zip(items, scores, strict=True)
    ]
    tags = {a.tag.name: a.tag_id for a in TagAssignment.objects.filter(tagset__in=sets).select_related("tag")}
    assign(
        [
            (items[0].pk, CURATED, tags["cat"]),
            (items[0].pk, CURATED, tags["dog"], DELETED, None),
            (items[1].pk, CURATED, tags["dog"]),
            (items[2].pk, CURATED, tags["cat"]),
            (items[3].pk, CURATED, tags["cat"]),
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        stats = pred.review_agreement(version=tagger.active_version)
    got = {a.name: (a.accepted, a.rejected, a.missed) for a in stats}
    assert got == {"cat": (2, 0, 1), "dog": (0, 1, 1)}
    assert [a.name for a in stats] == ["cat", "dog"]
    assert len(queries) == 1
    assert "GROUP BY" in queries[0]["sql"].upper()


def _queue_world() -> tuple:
    tagger = tagger_make("queue", "embedding_head")
    items = [make_item(seed=n) for n in range(6)]
    confidences = [3500, 3600, 3400, 3600, 5000, 3500]  # default threshold 3500: ties on purpose
    for n, item in enumerate(items):
        tagger_set_make(item, {"cat": confidences[n], "dog": 9000 - n}, model="queue", version="1")
    other = tags_make(["other"])["other"]
    assign([(items[1].pk, CURATED, other.pk)])  # item 1 has a curated set lacking cat: disagrees
    return tagger, items


def test_the_review_queue_pages_by_keyset_without_offset() -> None:
    tagger, _items = _queue_world()
    version = tagger.active_version
    whole = [(r.media_item_id, r.tag_id) for r in pred.review_queue(version=version, limit=100)]
    paged: list[tuple[int, int]] = []
    after = None
    with CaptureQueriesContext(connection) as queries:
        while True:
            rows = pred.review_queue(version=version, limit=2, after=after)
            if not rows:
                break
            paged += [(r.media_item_id, r.tag_id) for r in rows]
            after = pred.review_cursor_parse(pred.review_cursor(rows[-1]))
    assert len(whole) == 12
    assert paged == whole
    assert not any("OFFSET" in q["sql"].upper() for q in queries)


def test_the_review_api_pages_with_the_row_cursor(api) -> None:
    tagger, _items = _queue_world()
    url = f"/api/taggers/{tagger.pk}/review"
    whole = [(r["item"], r["tag"]) for r in api.get(url, {"limit": 100}).json()]
    first = api.get(url, {"limit": 5}).json()
    second = api.get(url, {"limit": 100, "after": first[-1]["cursor"]}).json()
    bad = api.get(url, {"after": "1.2.3"})
    assert [(r["item"], r["tag"]) for r in first + second] == whole
    assert bad.status_code == 400
    assert bad.json()["code"] == "taggers.bad_cursor"
