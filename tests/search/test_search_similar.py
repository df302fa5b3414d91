"""similar:<id>[,d]: perceptual-hash neighbours found through the five band indexes equal a
brute-force Hamming scan (docs/query-language.md#near-duplicates), on both databases."""

from __future__ import annotations

import random

import pytest

from apps.media.models import MediaItem
from apps.media.phash import phash_bands, phash_to_signed
from apps.search.query import QueryError, search_ids, search_media
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db


def with_hashes(hashes: list[int | None]) -> list[MediaItem]:
    items = items_make(len(hashes))
    for item, value in zip(items, hashes, strict=True):
        bands = phash_bands(value) if value is not None else [None] * 5
        item.phash = phash_to_signed(value) if value is not None else None
        for n, band in enumerate(bands):
            setattr(item, f"phash_b{n}", band)
    MediaItem.objects.bulk_update(items, ["phash", *(f"phash_b{n}" for n in range(5))])
    return items


def flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


@pytest.fixture
def hashed():
    """300 items: 60 near a centre (0–6 bits away, high bit set so signed storage is negative),
    the rest random, one without a hash."""
    rng = random.Random(11)
    centre = rng.getrandbits(64) | (1 << 63)
    hashes: list[int | None] = [centre]
    hashes += [flip(centre, rng.randint(0, 6), rng) for _ in range(60)]
    hashes += [rng.getrandbits(64) for _ in range(238)]
    hashes.append(None)
    return with_hashes(hashes), hashes


@pytest.mark.parametrize("distance", [0, 1, 2, 3, 4])
def test_similar_equals_brute_force(hashed, distance):
    items, hashes = hashed
    for probe in (0, 5, 100):
        expected = {
            item.pk
            for item, value in zip(items, hashes, strict=True)
            if value is not None and (value ^ hashes[probe]).bit_count() <= distance  # type: ignore[operator]
        }
        found = set(search_ids(q=f"similar:{items[probe].pk},{distance}", viewer=None))
        assert found == expected
        assert items[probe].pk in found
    assert len(set(search_ids(q=f"similar:{items[0].pk},4", viewer=None))) > 5  # the test can fail


def test_similar_combines_with_other_terms(hashed):
    items, _hashes = hashed
    near = set(search_ids(q=f"similar:{items[0].pk},4", viewer=None))
    without_self = set(search_ids(q=f"similar:{items[0].pk},4 -id:{items[0].pk}", viewer=None))
    assert without_self == near - {items[0].pk}


@pytest.mark.parametrize(
    ("q", "code", "position"),
    [
        ("similar:abc", "search.invalid_value", 8),
        ("similar:5,9", "search.invalid_value", 10),
        ("cat similar:999999999", "search.invalid_value", 12),
    ],
)
def test_similar_errors_name_the_value(db, q, code, position):
    with pytest.raises(QueryError) as info:
        search_ids(q=q, viewer=None)
    assert info.value.code == code
    assert info.value.details["position"] == position


def test_an_item_without_a_hash_is_a_clear_error(hashed):
    items, _hashes = hashed
    with pytest.raises(QueryError) as info:
        search_ids(q=f"similar:{items[-1].pk}", viewer=None)
    assert info.value.code == "search.invalid_value"
    assert "no perceptual hash" in info.value.message


def test_order_similarity_lists_closest_first_and_pages(hashed):
    items, hashes = hashed
    centre = hashes[0]
    q = f"similar:{items[0].pk},4 order:similarity"
    distance = {
        item.pk: (value ^ centre).bit_count()  # type: ignore[operator]
        for item, value in zip(items, hashes, strict=True)
        if value is not None
    }
    expected = sorted((pk for pk, d in distance.items() if d <= 4), key=lambda pk: (distance[pk], pk))
    assert len(expected) > 6
    assert expected[0] == items[0].pk
    seen, cursor = [], None
    while True:
        page = search_media(q=q, viewer=None, limit=3, cursor=cursor)
        seen += page.ids
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    with pytest.raises(QueryError) as info:
        search_ids(q="order:similarity", viewer=None)
    assert info.value.code == "search.order_requires"
