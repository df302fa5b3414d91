"""`site:` covers subdomains and `artist:` is case-insensitive with `_` = space, in the query language,
the library's filters and the API's (docs/query-language.md#qualifiers). Runs on SQLite and, with
TEST_DATABASE_URL, on MariaDB."""

from __future__ import annotations

import pytest

from apps.search.query import search_ids
from tests.tags.factories import items_bulk

pytestmark = pytest.mark.django_db

SITES = ["www.pixiv.net", "i.pixiv.net", "pixiv.net", "notpixiv.net", "pixiv.net.evil.example", ""]
ARTISTS = ["Ann Smith", "ann_smith", "ANN SMITH", "Ann Smithers", "Élodie", "élodie", "ann"]


@pytest.fixture
def lib(db):
    rows = [{"site": s} for s in SITES] + [{"artist": a} for a in ARTISTS]
    return items_bulk(rows)


def found(lib, q: str) -> set[int]:
    index = {item.pk: n for n, item in enumerate(lib)}
    return {index[pk] for pk in search_ids(q=q, viewer=None)}


def test_site_matches_the_host_and_its_subdomains(lib):
    assert found(lib, "site:pixiv.net") == {0, 1, 2}


def test_site_is_case_insensitive(lib):
    assert found(lib, "site:PIXIV.net") == {0, 1, 2}


def test_site_of_a_subdomain_does_not_match_its_parent(lib):
    assert found(lib, "site:www.pixiv.net") == {0}


def test_site_list_is_an_or_of_hosts_and_subdomains(lib):
    assert found(lib, "site:i.pixiv.net,notpixiv.net") == {1, 3}


def test_site_matching_no_host_finds_nothing(lib):
    assert found(lib, "site:example.org") == set()


def test_negated_site_excludes_subdomains(lib):
    assert found(lib, "-site:pixiv.net") == set(range(len(SITES) + len(ARTISTS))) - {0, 1, 2}


def test_artist_is_case_insensitive_and_underscore_is_a_space(lib):
    first = len(SITES)
    assert found(lib, "artist:ann_smith") == {first, first + 1, first + 2}


def test_quoted_artist_with_spaces(lib):
    first = len(SITES)
    assert found(lib, 'artist:"ANN SMITH"') == {first, first + 1, first + 2}


def test_artist_folds_non_ascii_case(lib):
    first = len(SITES)
    assert found(lib, "artist:ÉLODIE") == {first + 4, first + 5}


def test_artist_is_not_a_prefix_match(lib):
    first = len(SITES)
    assert found(lib, "artist:ann") == {first + 6}


def test_artist_of_only_underscores_matches_no_item(client, curator, lib):
    client.force_login(curator)
    html = client.get("/?artist=___").content.decode()
    assert "/items/" not in html


def test_library_filters_match_subdomains(client, curator, lib):
    client.force_login(curator)
    html = client.get("/?site=pixiv.net").content.decode()
    shown = {n for n, item in enumerate(lib) if f"/items/{item.pk}/" in html}
    assert shown == {0, 1, 2}


def test_library_artist_filter_is_case_insensitive(client, curator, lib):
    client.force_login(curator)
    html = client.get("/?artist=ann+smith").content.decode()
    first = len(SITES)
    shown = {n for n, item in enumerate(lib) if f"/items/{item.pk}/" in html}
    assert shown == {first, first + 1, first + 2}


def test_api_filters_match_subdomains_and_fold_artists(api, lib):
    by_site = api.get("/api/media/", {"site": "pixiv.net"}).json()["results"]
    by_artist = api.get("/api/media/", {"artist": "ANN_SMITH"}).json()["results"]
    first = len(SITES)
    assert {r["id"] for r in by_site} == {lib[n].pk for n in (0, 1, 2)}
    assert {r["id"] for r in by_artist} == {lib[n].pk for n in (first, first + 1, first + 2)}
