"""Autocomplete over dense prefixes (more than SPARSE_MAX matches): the bounded walk down the
most used tags gives the same top entries as ranking every match (MariaDB), and SQLite ranks
the whole range."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.tags.models import Tag
from apps.tags.selectors import autocomplete
from apps.tags.services import names as name_services
from apps.tags.services import vocabulary_default
from tests.tags.factories import tags_make

pytestmark = pytest.mark.django_db


def brute_force(match, limit: int = 10) -> list[str]:
    tags = [t for t in Tag.objects.all() if match(t.name)]
    return [t.name for t in sorted(tags, key=lambda t: (-t.media_count, t.name))[:limit]]


@pytest.fixture
def dense_library(settings):
    rng = random.Random(5)
    vocabulary = vocabulary_default()
    names = [f"dense_{n:04d}" for n in range(1_300)] + [f"pre_wordy_{n:04d}" for n in range(1_300)]
    names += ["wordsmith", "denim", "worn_out"]
    tags = tags_make(names)
    for tag in tags.values():
        tag.media_count = rng.choice([0, 0, 1, 2, 3, rng.randint(4, 5000)])
    Tag.objects.bulk_update(tags.values(), ["media_count"], batch_size=1000)
    name_services.tag_words_add(vocabulary=vocabulary, tags=[(t.pk, t.name) for t in tags.values()])
    return vocabulary


@pytest.mark.parametrize("q", ["den", "dense_0", "dense_12", "wor", "wordy", "00"])
def test_dense_prefixes_rank_like_brute_force(dense_library, q):
    with CaptureQueriesContext(connection) as queries:
        found = autocomplete.tag_autocomplete(q=q, vocabulary=dense_library, limit=10)
    walked = any("ROWS EXAMINED" in query["sql"] for query in queries.captured_queries)
    assert walked == (connection.vendor == "mysql" and q in ("den", "wor", "wordy"))
    words = lambda name: name.split("_")[1:]  # noqa: E731 - the first word is the prefix match
    expected = brute_force(lambda n: n.startswith(q) or any(w.startswith(q) for w in words(n)))
    assert [s.name for s in found] == expected
    assert len(found) == 10


def test_dense_walk_is_bounded_and_falls_back(dense_library, monkeypatch):
    """With a walk too short to find ten matches the full ranking answers, still exactly."""
    monkeypatch.setattr(autocomplete, "_WALK_ROWS", 5)
    found = autocomplete.tag_autocomplete(q="den", vocabulary=dense_library, limit=10)
    assert [s.name for s in found] == brute_force(lambda n: n.startswith("den"))


def test_infix_hits_at_the_top_do_not_hide_word_starts(dense_library):
    """The walk filters with LIKE '%q%'; infix-only names that outrank every real match must
    send it to the full ranking, not return a short list."""
    infix = tags_make([f"sworx_{n:03d}" for n in range(300)])
    for tag in infix.values():
        tag.media_count = 100_000
    Tag.objects.bulk_update(infix.values(), ["media_count"])
    name_services.tag_words_add(vocabulary=dense_library, tags=[(t.pk, t.name) for t in infix.values()])
    found = autocomplete.tag_autocomplete(q="wor", vocabulary=dense_library, limit=10)
    words = lambda name: name.split("_")[1:]  # noqa: E731
    assert [s.name for s in found] == brute_force(
        lambda n: n.startswith("wor") or any(w.startswith("wor") for w in words(n))
    )
    assert len(found) == 10
    assert not any(s.name.startswith("sworx") for s in found)
