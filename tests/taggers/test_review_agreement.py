"""Reviewer agreement (docs/taggers.md#review): per tag, accepted / rejected / missed over the
items a version scored, counted by one grouped SQL aggregate (no per-row Python loop)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.taggers.selectors import predictions as pred
from apps.tags.models import TagAssignment, TagSet
from tests.media.factories import make_item
from tests.taggers.wd_fixtures import tagger_make
from tests.tags.factories import assign, tagger_set_make

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
