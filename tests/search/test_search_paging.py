"""Search paging and limits: keyset pages without OFFSET, cursors, plans, counts and the
statement-time guard (docs/query-language.md#paging, #counts, #execution)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.db import statement_limit
from apps.media.models import MediaItem
from apps.search.query import (
    QueryError,
    QueryTimeout,
    executor,
    parse,
    query_resolve,
    search_ids,
    search_media,
)
from apps.search.query.count import count_page
from apps.search.query.ir import normalise
from apps.search.query.planner import plan_choose
from apps.tags.models import EffectiveTag, Tag, TagSet
from tests.tags.factories import assign, effective_build, items_make, tags_make

pytestmark = pytest.mark.django_db

C = TagSet.Kind.CURATED


@pytest.fixture
def many(db):
    """300 items: every other one tagged `cat`, every third `dog`, sizes scrambled."""
    items = items_make(300)
    for n, item in enumerate(items):
        MediaItem.objects.filter(pk=item.pk).update(size_bytes=(n * 7919) % 1000)
    tags = tags_make(["cat", "dog"])
    rows = [(item.pk, C, tags["cat"].pk) for item in items[::2]]
    rows += [(item.pk, C, tags["dog"].pk) for item in items[::3]]
    assign(rows)
    effective_build([item.pk for item in items])
    return items


@pytest.mark.parametrize(
    "q", ["", "cat", "cat -dog", "order:filesize", "cat order:filesize_asc", "-dog order:random"]
)
def test_keyset_pages_return_each_id_once_without_offset(many, q):  # check 18
    expected = search_ids(q=q, viewer=None)
    if "random" not in q:
        assert len(expected) == len(set(expected)) > 50
    seen: list[int] = []
    cursor = None
    with CaptureQueriesContext(connection) as queries:
        while True:
            page = search_media(q=q, viewer=None, limit=50, cursor=cursor)
            assert len(page.ids) <= 50
            seen += page.ids
            cursor = page.next_cursor
            if cursor is None:
                break
    assert len(seen) == len(set(seen))
    if "random" in q:
        assert set(seen) == set(expected)
    else:
        assert seen == expected
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)
    assert any("LIMIT 51" in query["sql"].upper() for query in queries.captured_queries)


@pytest.mark.parametrize("q", ["", "cat -dog", "order:filesize", "cat order:filesize_asc", "order:random"])
def test_prev_cursor_walks_back_through_the_same_pages(many, q):
    pages, cursor = [], None
    while True:
        page = search_media(q=q, viewer=None, limit=40, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(pages) >= 3
    assert pages[0].prev_cursor is None
    assert pages[1].prev_cursor
    # From the last page back to the first: the same ids, and the same cursors onward.
    page = pages[-1]
    for expected in reversed(pages[:-1]):
        assert page.prev_cursor is not None
        page = search_media(q=q, viewer=None, limit=40, cursor=page.prev_cursor)
        assert page.ids == expected.ids
    assert page.prev_cursor is None  # back at the first page
    second = search_media(q=q, viewer=None, limit=40, cursor=page.next_cursor)
    assert second.ids == pages[1].ids


def test_pages_stay_stable_while_items_arrive(many):  # check 18 (inserts between pages)
    first = search_media(q="cat", viewer=None, limit=50)
    arrivals = items_make(20)
    cat = Tag.objects.get(name="cat")
    assign([(item.pk, C, cat.pk) for item in arrivals])
    effective_build([item.pk for item in arrivals])
    seen, cursor = list(first.ids), first.next_cursor
    while cursor:
        page = search_media(q="cat", viewer=None, limit=50, cursor=cursor)
        seen += page.ids
        cursor = page.next_cursor
        arrivals += items_make(1)
    assert len(seen) == len(set(seen)) == 150
    assert not set(seen) & {a.pk for a in arrivals}
    assert len(search_ids(q="cat", viewer=None)) == 170


def test_rare_tag_drives_a_postings_plan(many, settings):
    with CaptureQueriesContext(connection) as queries:
        page = search_media(q="dog cat", viewer=None, limit=10)
    assert page.plan == "postings"
    main = next(q["sql"] for q in queries.captured_queries if "LIMIT 11" in q["sql"])
    assert main.split(" FROM ")[1].lstrip('"`').startswith("tags_effectivetag")
    settings.SEARCH_SMALL_THRESHOLD = 0  # both terms are common now: a scan plan, same answer
    scanned = search_media(q="dog cat", viewer=None, limit=10)
    assert scanned.plan == "scan"
    assert scanned.ids == page.ids


def test_foreign_or_tampered_cursors_are_refused(many):
    cat = search_media(q="cat", viewer=None, limit=10)
    for q, cursor in [
        ("dog", cat.next_cursor),
        ("cat order:id_asc", cat.next_cursor),
        ("cat", "x" + cat.next_cursor),
    ]:
        with pytest.raises(QueryError) as info:
            search_media(q=q, viewer=None, cursor=cursor)
        assert info.value.code == "search.cursor_mismatch"
        assert info.value.status_code == 400
    assert search_media(q="cat  ", viewer=None, cursor=cat.next_cursor).ids  # same query, other spacing


def heavy_sql() -> str:
    """A condition that takes ~2 s on either database with 300 items (a 27-million-row join)."""
    t = MediaItem._meta.db_table
    join = f"{t} a, {t} b, {t} c WHERE a.size_bytes + b.size_bytes + c.size_bytes >= 0"
    return f"(SELECT COUNT(*) FROM {join}) > 0"


def test_counts_are_free_exact_or_bounded(many, settings):  # check 20
    lone = search_media(q="cat", viewer=None, limit=10, count="estimate")
    assert lone.count == EffectiveTag.objects.filter(tag__name="cat").count() == 150
    assert lone.count_exact
    exact = search_media(q="cat -dog", viewer=None, limit=10, count="estimate")
    assert exact.count == len(search_ids(q="cat -dog", viewer=None))
    assert exact.count_exact
    short = search_media(q="cat dog width:0", viewer=None, limit=200, count="estimate")
    assert short.count == len(short.ids)
    assert short.count_exact
    assert search_media(q="cat dog", viewer=None, limit=10).count is None


def test_a_count_past_its_limit_is_an_upper_bounded_estimate(many, settings):  # check 20
    settings.SEARCH_COUNT_ESTIMATE_TIME_LIMIT = 0.05
    cond = normalise(query_resolve(parse("cat dog")).cond)
    plan = plan_choose(cond, limit=10, total=300)
    count, exact, bound = count_page(
        mode="estimate",
        plan=plan,
        cond=cond,
        base=MediaItem.objects.all(),
        first_page=True,
        rows=10,
        more=True,
        total=300,
        queryset=lambda p: MediaItem.objects.extra(where=[heavy_sql()]),
        query_key="test",
    )
    assert exact is False
    assert bound == 100
    assert 0 <= count <= bound


def test_an_estimate_skips_a_count_that_would_touch_too_many_rows(many, settings):  # check 20
    settings.SEARCH_COUNT_ESTIMATE_ROWS = 10  # "cat" drives with 150 rows: over the budget
    with CaptureQueriesContext(connection) as queries:
        page = search_media(q="cat -dog", viewer=None, limit=10, count="estimate")
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    assert page.count_exact is False
    assert page.count_upper_bound == 150
    assert 0 <= (page.count or 0) <= 150
    exact = search_media(q="cat -dog", viewer=None, limit=10, count="exact")
    assert exact.count_exact
    assert exact.count == len(search_ids(q="cat -dog", viewer=None))


def test_statement_limit_stops_a_long_statement_and_the_connection_survives(many):  # check 19
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as info, statement_limit(0.05, term="cat"):
        MediaItem.objects.extra(where=[heavy_sql()]).exists()
    assert time.monotonic() - started < 0.55
    assert info.value.status_code == 422
    assert info.value.details == {"limit_s": 0.05, "term": "cat"}
    assert MediaItem.objects.count() == 300


def test_search_past_its_time_limit_is_query_timeout(many, settings, monkeypatch):
    original = executor._page_rows

    def slow_page_rows(*args, **kwargs):
        MediaItem.objects.extra(where=[heavy_sql()]).exists()  # runs under the guard
        return original(*args, **kwargs)

    monkeypatch.setattr(executor, "_page_rows", slow_page_rows)
    settings.SEARCH_TIME_LIMIT = 0.05
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        search_media(q="cat dog", viewer=None)
    assert time.monotonic() - started < 1.0
    assert info.value.code == "search.query_timeout"
    assert info.value.details["term"] == "cat"
    monkeypatch.setattr(executor, "_page_rows", original)
    assert len(search_media(q="cat dog", viewer=None).ids) == 50


@pytest.mark.parametrize("turn", [1, 2])
def test_every_test_starts_with_empty_caches(turn):
    """Cached counts (and autocomplete lists) from one test must not answer the next one."""
    from django.core.cache import cache

    assert cache.get("tests:left-behind") is None
    cache.set("tests:left-behind", turn, 3600)
