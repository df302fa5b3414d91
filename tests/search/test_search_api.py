"""The query language over HTTP: `/api/media/?q=`, `/api/media/search`, and the gallery's query bar."""

from __future__ import annotations

import pytest

from apps.media.models import MediaItem
from apps.search.query import executor
from apps.tags.models import TagSet
from tests.search.queries import hostile_queries
from tests.tags.factories import assign, effective_build, items_make, tags_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(db) -> list[MediaItem]:
    """Five items: 0–2 tagged cat (2 is a png), 3 tagged dog, 4 untagged."""
    rows = items_make(5)
    MediaItem.objects.filter(pk=rows[2].pk).update(format="png", mime_type="image/png")
    tags = tags_make(["cat", "dog"])
    curated = TagSet.Kind.CURATED
    assign(
        [*((item.pk, curated, tags["cat"].pk) for item in rows[:3]), (rows[3].pk, curated, tags["dog"].pk)]
    )
    effective_build([item.pk for item in rows])
    return rows


def test_list_with_q_answers_a_search_page(api, items):
    body = api.get("/api/media/?q=cat").json()
    assert [r["id"] for r in body["results"]] == [items[2].pk, items[1].pk, items[0].pk]
    assert body["next_cursor"] is None
    assert body["prev_cursor"] is None
    assert body["warnings"] == []
    assert body["count"] == 3
    assert body["count_exact"] is True
    assert body["results"][0]["format"] == "png"  # the usual item serializer


def test_search_endpoint_pages_by_cursor(api, items):
    first = api.get("/api/media/search", {"q": "cat or dog", "limit": 2}).json()
    assert len(first["results"]) == 2
    assert first["next_cursor"]
    second = api.get(
        "/api/media/search", {"q": "cat or dog", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == [items[3].pk, items[2].pk, items[1].pk, items[0].pk]
    assert second["next_cursor"] is None
    assert first["prev_cursor"] is None
    assert second["prev_cursor"]
    back = api.get(
        "/api/media/search", {"q": "cat or dog", "limit": 2, "cursor": second["prev_cursor"]}
    ).json()
    assert [r["id"] for r in back["results"]] == [items[3].pk, items[2].pk]
    assert back["prev_cursor"] is None


def test_filters_narrow_the_query(api, items):
    body = api.get("/api/media/", {"q": "cat", "format": "png"}).json()
    assert [r["id"] for r in body["results"]] == [items[2].pk]
    assert api.get("/api/media/search", {"format": "png"}).json()["results"][0]["id"] == items[2].pk


def test_bad_query_is_a_400_in_the_project_error_shape(api, items):
    response = api.get("/api/media/search", {"q": "(cat or dog"})
    assert response.status_code == 400
    assert response.json() == {
        "code": "search.unbalanced_parenthesis",
        "message": "Unclosed '(' opened at position 0.",
        "details": {"token": "(", "position": 0, "length": 1, "hint": "Add ')' or remove '('."},
    }


def test_cursor_of_another_query_is_refused(api, items):
    cursor = api.get("/api/media/", {"q": "cat", "limit": 1}).json()["next_cursor"]
    response = api.get("/api/media/", {"q": "dog", "cursor": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "search.cursor_mismatch"
    other_filter = api.get("/api/media/", {"q": "cat", "cursor": cursor, "format": "png"})
    assert other_filter.status_code == 400
    assert other_filter.json()["code"] == "search.cursor_mismatch"


def test_bad_limit_and_count_parameters(api, items):
    assert api.get("/api/media/", {"q": "cat", "limit": "x"}).status_code == 400
    assert api.get("/api/media/", {"q": "cat", "count": "lots"}).status_code == 400
    assert api.get("/api/media/", {"q": "cat", "count": "none"}).json()["count"] is None
    assert len(api.get("/api/media/", {"q": "cat limit:1", "limit": 3}).json()["results"]) == 1


def test_warnings_ride_with_results(api, items):
    body = api.get("/api/media/", {"q": "cat nosuch"}).json()
    assert body["results"] == []
    assert body["warnings"][0]["code"] == "unknown_tag"


def test_timeout_is_a_422(api, items, settings, monkeypatch):
    from apps.search.query.errors import QueryTimeout

    def too_slow(*args, **kwargs):
        raise QueryTimeout(limit_s=3.0, term="cat")

    monkeypatch.setattr(executor, "_page_rows", too_slow)
    response = api.get("/api/media/", {"q": "cat"})
    assert response.status_code == 422
    assert response.json()["code"] == "search.query_timeout"
    assert response.json()["details"] == {"limit_s": 3.0, "term": "cat"}


def test_any_string_is_a_result_or_a_400_never_a_500(api, items):  # check 16
    statuses = set()
    for q in hostile_queries(150, seed=1916):
        response = api.get("/api/media/search", {"q": q, "count": "none"})
        statuses.add(response.status_code)
        assert response.status_code in (200, 400), (q, response.content[:300])
        if response.status_code == 400:
            details = response.json()["details"]
            assert 0 <= details["position"] <= len(q), (q, details)
    assert statuses == {200, 400}


# The gallery -----------------------------------------------------------------------------------


def test_gallery_query_bar_filters_and_pages_by_cursor(client, curator, items, monkeypatch):
    from apps.media import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client.force_login(curator)
    html = client.get("/", {"q": "cat"}).content.decode()
    assert 'name="q" value="cat"' in html
    assert html.count('class="tile"') == 2
    assert f"/items/{items[2].pk}/" in html
    assert f"/items/{items[0].pk}/" not in html
    assert "cursor=" in html
    assert "after=" not in html
    link = html.split('hx-get="/?')[1].split('"')[0].replace("&amp;", "&")
    more = client.get(f"/?{link}", HTTP_HX_REQUEST="true")
    assert more.status_code == 200
    assert "<html" not in more.content.decode()
    assert f"/items/{items[0].pk}/" in more.content.decode()


def test_gallery_shows_a_bad_query_in_place_with_422(client, curator, items):
    client.force_login(curator)
    response = client.get("/", {"q": "cat (dog"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 422
    assert "<html" not in html
    assert "Unclosed" in html
    assert "At position 4" in html
    assert "cat <mark>(</mark>dog" in html
    page = client.get("/", {"q": "widht:100"})
    assert page.status_code == 422
    assert "width" in page.content.decode()


def test_gallery_shows_warnings_and_keeps_the_filters(client, curator, items):
    client.force_login(curator)
    html = client.get("/", {"q": "cat", "format": "png"}).content.decode()
    assert html.count('class="tile"') == 1
    assert f"/items/{items[2].pk}/" in html
    html = client.get("/", {"q": "cta"}).content.decode()
    assert "is not a known tag" in html
    assert "Did you mean cat?" in html


def test_admin_search_box_runs_queries_after_q_colon(client, items):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    html = client.get("/admin/media/mediaitem/", {"q": "q:cat -format:png"}).content.decode()
    assert f"/admin/media/mediaitem/{items[0].pk}/change/" in html
    assert f"/admin/media/mediaitem/{items[2].pk}/change/" not in html
    assert f"/admin/media/mediaitem/{items[3].pk}/change/" not in html
    bad = client.get("/admin/media/mediaitem/", {"q": "q:(cat"}, follow=True).content.decode()
    assert "Unclosed" in bad
    assert "position 0" in bad
