"""Search results: every qualifier and operator, aliases, implications, wildcards and orders
(docs/query-language.md); paging, cursors, counts and time limits are in test_search_paging."""

from __future__ import annotations

from datetime import UTC, datetime
from hashlib import sha256

import pytest

from apps.media.models import MediaItem
from apps.search.query import QueryError, search_ids, search_media
from apps.tags.models import EffectiveTag, Tag, TagSet
from tests.tags.factories import alias_make, assign, closure_make, effective_build, items_make, tags_make

pytestmark = pytest.mark.django_db

C, S, T = TagSet.Kind.CURATED, TagSet.Kind.SOURCE, TagSet.Kind.TAGGER
MB = 1024 * 1024
SHAPES = [  # kind, format, width, height, ratio_milli, size, rating, extra
    ("image", "jpeg", 1920, 1080, 1777, 2 * MB, "g", {"artist": "Ann", "site": "a.example"}),
    ("image", "png", 800, 600, 1333, 300 * 1024, "s", {"artist": "ann"}),
    ("video", "mp4", 1280, 720, 1777, 5 * MB, "q", {"duration_ms": 90_000, "fps_milli": 30_000}),
    ("frame", "jpeg", 1280, 720, 1777, 1000, "u", {"frame_index": 3, "timestamp_ms": 1500, "box_w": 10}),
    ("image", "webp", 4000, 3000, 1333, 10 * MB, "e", {}),
    ("image", "jpeg", 100, 100, 1000, 1000, "u", {}),
    ("image", "jpeg", 500, 500, 1000, 1000, "u", {}),
    ("image", "gif", 10, 10, 1000, 1000, "u", {}),
]


@pytest.fixture
def lib(db):
    """Eight items with distinct columns and tag sets; see the comments for their effective tags."""
    items = []
    for kind, fmt, w, h, ratio, size, rating, extra in SHAPES:
        items += items_make(
            1, kind=kind, format=fmt, width=w, height=h, pixels=w * h, ratio_milli=ratio, size_bytes=size,
            rating=rating, **extra,
        )  # fmt: skip
    MediaItem.objects.filter(pk=items[3].pk).update(video=items[2])
    url = "https://a.example/1"
    MediaItem.objects.filter(pk=items[0].pk).update(source=url, source_hash=sha256(url.encode()).hexdigest())
    for index, when in ((0, "2023-03-01"), (1, "2024-01-15"), (2, "2024-06-01")):
        stamp = datetime.fromisoformat(when).replace(tzinfo=UTC)
        MediaItem.objects.filter(pk=items[index].pk).update(created_at=stamp)
    t = tags_make(["cat", "dog", "car", "vehicle", "automobile", "1boy", "long_hair", "re:zero"])
    t |= tags_make(["saber_(fate)", "rin"], type_key="character")
    i = [item.pk for item in items]
    assign([(i[0], C, t["cat"].pk), (i[0], C, t["saber_(fate)"].pk), (i[1], C, t["dog"].pk)])
    assign([(i[1], C, t["rin"].pk), (i[4], C, t["1boy"].pk), (i[6], C, t["long_hair"].pk)])
    assign([(i[6], C, t["cat"].pk, 0, None)])  # a tombstone
    assign(
        [
            (i[2], S, t["car"].pk),
            (i[3], S, t["cat"].pk),
            (i[3], S, t["dog"].pk),
            (i[4], S, t["automobile"].pk),
        ]
    )
    tagger = [(i[3], "cat", 9500), (i[3], "long_hair", 4000), (i[3], "dog", 2000), (i[5], "cat", 3000)]
    assign([(item, T, t[name].pk, 1, conf) for item, name, conf in [*tagger, (i[5], "1boy", 8000)]])
    alias_make(t["automobile"], t["car"])
    closure_make([(t["car"], t["vehicle"], 1)])
    effective_build(i)
    # effective: 0 cat saber | 1 dog rin | 2 car vehicle* | 3 cat dog long_hair | 4 1boy | 5 1boy
    #            6 long_hair | 7 (nothing)
    MediaItem.objects.filter(pk=i[7]).update(effective_stale=True)
    return items


def run(lib, q: str, **kwargs) -> list[int]:
    """Indexes (into `lib`) of every match, in result order."""
    index = {item.pk: n for n, item in enumerate(lib)}
    return [index[pk] for pk in search_ids(q=q, viewer=None, **kwargs)]


def found(lib, q: str) -> set[int]:
    return set(run(lib, q))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("", {0, 1, 2, 3, 4, 5, 6, 7}),
        ("cat", {0, 3}),
        ("cat dog", {3}),
        ("cat and dog", {3}),
        ("cat or dog", {0, 1, 3}),
        ("cat | dog", {0, 1, 3}),
        ("(cat or dog) -rin", {0, 3}),
        ("-(cat or dog)", {2, 4, 5, 6, 7}),
        ("~cat ~dog long_hair", {3}),
        ("(cat or dog) long_hair", {3}),
        ("long_hair -cat", {6}),
        ("cat -cat", set()),
        ("-cat -dog -1boy", {2, 6, 7}),
        ("(cat (dog or rin)) or 1boy", {3, 4, 5}),
        ("vehicle", {2}),
        ("direct:vehicle", set()),
        ("direct:car", {2}),
        ("automobile", {2}),
        ("unaliased:automobile", {4}),
        ("unaliased:car", {2}),
        ("char:rin", {1}),
        ("character:saber_(fate)", {0}),
        ("tag:cat", {0, 3}),
        ("general:rin", set()),
        ("re:zero", set()),
        ("nosuchtag", set()),
        ("-nosuchtag", {0, 1, 2, 3, 4, 5, 6, 7}),
        ("*_(fate)", {0}),
        ("c*", {0, 2, 3}),
        ("-c*", {1, 4, 5, 6, 7}),
        ("char:*", {0, 1}),
        ("zz*", set()),
        ("-zz*", {0, 1, 2, 3, 4, 5, 6, 7}),
        ("in:curated cat", {0}),
        ("in:source cat", {3}),
        ("in:tagger cat", {3, 5}),
        ("in:any long_hair", {3, 6}),
        ("in:source vehicle", {2, 4}),
        ("in:source automobile", {2, 4}),
        ("in:source direct:car", {2, 4}),
        ("ai:cat", {3}),
        ("ai:cat,>=0.25", {3, 5}),
        ("conf:dog,<0.5", {3}),
        ("ai:1boy,80%", {5}),
        ("-ai:cat", {0, 1, 2, 4, 5, 6, 7}),
        ("width:>=1280", {0, 2, 3, 4}),
        ("height:<600", {5, 6, 7}),
        ("width:1280 height:720", {2, 3}),
        ("width:10,100,4000", {4, 5, 7}),
        ("mpixels:>=2", {0, 4}),
        ("ratio:16:9", {0, 2, 3}),
        ("ratio:4:3", {1, 4}),
        ("ratio:1", {5, 6, 7}),
        ("ratio:>1.5", {0, 2, 3}),
        ("filesize:>1mb", {0, 2, 4}),
        ("filesize:300kb", {1}),
        ("filesize:..1kb", {3, 5, 6, 7}),
        ("duration:>=1:00", {2}),
        ("duration:none", {0, 1, 3, 4, 5, 6, 7}),
        ("-duration:>=1:00", {0, 1, 3, 4, 5, 6, 7}),
        ("duration:any", {2}),
        ("fps:30", {2}),
        ("tagcount:2", {0, 1, 2}),
        ("tagcount:0", {7}),
        ("tagcount:>=3", {3}),
        ("date:2023", {0}),
        ("date:2024-01..2024-06", {1, 2}),
        ("date:<2024", {0}),
        ("age:<1d", {3, 4, 5, 6, 7}),
        ("age:>30d", {0, 1, 2}),
        ("format:png", {1}),
        ("filetype:jpg", {0, 3, 5, 6}),
        ("kind:video", {2}),
        ("is:frame", {3}),
        ("kind:image,video", {0, 1, 2, 4, 5, 6, 7}),
        ("is:stale", {7}),
        ("rating:nsfw", {2, 4}),
        ("rating:sfw", {0, 1}),
        ("rating:g", {0}),
        ("source:https://a.example/1", {0}),
        ("source:https://a.example/*", {0}),
        ("source:https://b.example/1", set()),
        ("site:a.example", {0}),
        ("artist:Ann", {0, 1}),
        ("artist:ann", {0, 1}),
        ("has:tagger", {3, 5}),
        ("has:curated", {0, 1, 4, 6}),
        ("has:source,tagger", {2, 3, 4, 5}),
        ("-has:curated", {2, 3, 5, 7}),
        ("has:crop", {3}),
        ("frame:3", {3}),
        ("time:1s..2s", {3}),
        ("chartags:1", {0, 1}),
        ("charactertags:0", {2, 3, 4, 5, 6, 7}),
        ("model:wd", {3, 5}),
        ("model:wd@1", {3, 5}),
        ("model:other", set()),
        ("cat width:>1000 kind:image", {0}),
        ("(cat or 1boy) -rating:e", {0, 3, 5}),
    ],
)
def test_query_matches(lib, q, expected):
    assert found(lib, q) == expected


def test_id_sha256_and_video_qualifiers(lib):
    assert found(lib, f"id:{lib[1].pk}..{lib[3].pk}") == {1, 2, 3}
    assert found(lib, f"id:<{lib[1].pk}") == {0}
    assert found(lib, f"sha256:{lib[4].sha256}") == {4}
    assert found(lib, f"video:{lib[2].pk}") == {3}
    assert run(lib, f"video:{lib[2].pk} order:timestamp") == [3]


def test_alias_resolves_to_the_same_items_and_warns(lib):  # check 4
    assert run(lib, "automobile") == run(lib, "car")
    page = search_media(q="automobile", viewer=None)
    assert [w["code"] for w in page.warnings] == ["aliased_term", "stale_items"]
    assert page.warnings[0]["tag"] == "car"
    assert page.warnings[0]["position"] == 0


def test_implication_finds_items_tagged_only_with_the_child(lib):  # check 15
    assert found(lib, "vehicle") == {2}
    assert found(lib, "direct:vehicle") == set()
    assert EffectiveTag.objects.filter(media_item=lib[2], tag__name="vehicle", is_implied=True).exists()


def test_legacy_tilde_matches_the_group(lib):  # check 13
    assert run(lib, "~cat ~dog long_hair") == run(lib, "(cat or dog) long_hair")


def test_unknown_tags_warn_with_suggestions(lib):
    page = search_media(q="cta long_hair", viewer=None)
    assert page.ids == []
    warning = page.warnings[0]
    assert warning["code"] == "unknown_tag"
    assert warning["token"] == "cta"
    assert warning["position"] == 0
    assert search_media(q="ca", viewer=None).warnings[0]["suggestions"] == ["cat", "car"]


def test_unknown_qualifier_suggests_the_nearest(lib):  # check 12
    with pytest.raises(QueryError) as info:
        search_media(q="cat widht:100", viewer=None)
    err = info.value
    assert err.code == "search.unknown_qualifier"
    assert err.details["suggestion"] == "width"
    assert err.details["token"] == "widht"
    assert err.details["position"] == 4
    assert "width" in err.details["hint"]
    real = search_media(q="re:zero", viewer=None)  # a real tag with a colon
    assert [w["code"] for w in real.warnings] == ["stale_items"]
    assert search_media(q="xq:foo", viewer=None).warnings[0]["code"] == "unknown_tag"


def test_unknown_vocabulary_is_invalid(lib):
    with pytest.raises(QueryError) as info:
        search_media(q="cat vocab:nope", viewer=None)
    assert info.value.code == "search.invalid_value"
    assert info.value.details["position"] == 10


def test_wildcard_truncates_to_the_most_used_tags(db):  # check 14
    items = items_make(2)
    names = [f"w_{n:03d}" for n in range(150)]
    tags = tags_make(names)
    Tag.objects.filter(pk__in=[t.pk for t in tags.values()]).update(media_count=0)
    for n, name in enumerate(names):
        Tag.objects.filter(pk=tags[name].pk).update(media_count=n)
    assign([(items[0].pk, C, tags["w_149"].pk), (items[1].pk, C, tags["w_000"].pk)])
    effective_build([items[0].pk, items[1].pk])
    page = search_media(q="w_*", viewer=None)
    assert page.ids == [items[0].pk]
    truncated = page.warnings[0]
    assert truncated["code"] == "wildcard_truncated"
    assert (truncated["total"], truncated["used"]) == (150, 100)
    with pytest.raises(QueryError) as info:
        search_media(q="a -w_*", viewer=None)
    assert info.value.code == "search.wildcard_too_broad"
    assert info.value.details["position"] == 3
    assert info.value.details["total"] == 150


def test_a_broad_wildcard_searches_its_most_used_tags(db):  # check 14, past WILDCARD_SORT_MAX
    """1,200 matching tags: the 100 most used are found by the bounded walk, not a full sort."""
    items = items_make(3)
    names = [f"b_{n:04d}" for n in range(1_200)]
    tags = tags_make(names)
    for n, name in enumerate(names):
        tags[name].media_count = (n * 7919) % 1_201  # a scrambled order, all different
    Tag.objects.bulk_update(tags.values(), ["media_count"], batch_size=500)
    ranked = sorted(tags.values(), key=lambda t: -t.media_count)
    top, just_out = ranked[99], ranked[100]
    assign([(items[0].pk, C, top.pk), (items[1].pk, C, just_out.pk), (items[2].pk, C, ranked[0].pk)])
    effective_build([i.pk for i in items])
    page = search_media(q="b_*", viewer=None)
    assert page.ids == [items[2].pk, items[0].pk]
    truncated = page.warnings[0]
    assert truncated["code"] == "wildcard_truncated"
    assert truncated["used"] == 100
    assert "more than 1,000 tags" in truncated["message"]
    assert truncated["total"] is None
    with pytest.raises(QueryError, match="more than 1,000 tags"):
        search_media(q="a -b_*", viewer=None)


def test_wildcard_limit_follows_settings(lib, settings):
    settings.SEARCH_WILDCARD_MAX = 1
    page = search_media(q="c*", viewer=None)  # cat (2 items) beats car (1)
    assert {w["code"] for w in page.warnings} == {"wildcard_truncated", "stale_items"}
    assert len(page.ids) == 2
    with pytest.raises(QueryError, match="matches 2 tags"):
        search_media(q="-c*", viewer=None)


def test_term_expansion_is_bounded(lib, settings):
    settings.SEARCH_TERM_EXPANSION_MAX = 2
    with pytest.raises(QueryError) as info:
        search_media(q="in:source vehicle", viewer=None)
    assert info.value.code == "search.term_too_broad"
    assert info.value.details["token"] == "vehicle"
    assert info.value.details["position"] == 10


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("order:filesize", [4, 2, 0, 1, 7, 6, 5, 3]),
        ("order:filesize_asc", [3, 5, 6, 7, 1, 0, 2, 4]),
        ("order:duration", [2, 7, 6, 5, 4, 3, 1, 0]),
        ("order:duration_asc", [0, 1, 3, 4, 5, 6, 7, 2]),
        ("order:id_asc", [0, 1, 2, 3, 4, 5, 6, 7]),
        ("order:date_asc", [0, 1, 2, 3, 4, 5, 6, 7]),
        ("order:date", [7, 6, 5, 4, 3, 2, 1, 0]),
        ("order:mpixels", [4, 0, 3, 2, 1, 6, 5, 7]),
        ("order:ratio_asc", [5, 6, 7, 1, 4, 0, 2, 3]),
        ("order:tagcount", [3, 2, 1, 0, 6, 5, 4, 7]),
        ("(cat or 1boy) order:tagcount_asc", [4, 5, 0, 3]),
    ],
)
def test_orders_page_by_keyset_in_the_same_order(lib, q, expected):
    assert run(lib, q) == expected
    pages, cursor = [], None
    while True:
        page = search_media(q=q, viewer=None, limit=3, cursor=cursor)
        pages += page.ids
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [lib[n].pk for n in expected]


def test_random_order_is_a_stable_permutation_across_pages(lib):
    first = search_media(q="order:random limit:3", viewer=None)
    seen = list(first.ids)
    cursor = first.next_cursor
    while cursor:
        page = search_media(q="order:random limit:3", viewer=None, cursor=cursor)
        seen += page.ids
        cursor = page.next_cursor
    assert sorted(seen) == sorted(item.pk for item in lib)
