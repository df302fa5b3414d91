"""The library's selection endpoints and result count (no browser; tests/browser covers the page).
Runs on SQLite and, with TEST_DATABASE_URL, on MariaDB."""

from __future__ import annotations

import pytest

from apps.media import views
from apps.media.models import MediaItem
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed(client, curator):
    client.force_login(curator)
    return client


def test_select_all_matching_the_filters_answers_their_ids(signed):
    png = items_make(2, format="png", mime_type="image/png")
    items_make(2)
    body = signed.get("/selection/ids", {"format": "png"}).json()
    assert body == {"ids": [png[1].pk, png[0].pk], "truncated": False}


def test_select_all_matching_a_query_answers_its_ids(signed):
    wide = items_make(2, width=2000, height=1000)
    items_make(1, width=10, height=10)
    body = signed.get("/selection/ids", {"q": "width:>=1000"}).json()
    assert sorted(body["ids"]) == [i.pk for i in wide]


def test_select_all_with_a_broken_query_is_a_400_with_the_error(signed):
    response = signed.get("/selection/ids", {"q": "(a"})
    assert response.status_code == 400
    assert response.json()["code"] == "search.unbalanced_parenthesis"


def test_select_all_with_a_bad_filter_is_a_400_naming_it(signed):
    response = signed.get("/selection/ids", {"width_min": "wide"})
    assert response.status_code == 400
    assert "width_min" in response.json()["details"]["fields"]


def test_library_counts_beyond_the_first_page(signed, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    items_make(5)
    assert 'data-count="5"' in signed.get("/").content.decode()


def test_delete_selection_asks_first(signed):
    items = items_make(2)
    page = signed.post("/selection/delete", {"ids": f"{items[0].pk} {items[1].pk}"})
    assert page.status_code == 200
    assert MediaItem.objects.count() == 2


def test_delete_selection_after_confirming(signed):
    items = items_make(3)
    signed.post("/selection/delete", {"ids": f"{items[0].pk},{items[1].pk}", "confirm": "yes"})
    assert list(MediaItem.objects.values_list("pk", flat=True)) == [items[2].pk]


def test_delete_selection_needs_the_permission(client, viewer):
    items = items_make(1)
    client.force_login(viewer)
    response = client.post("/selection/delete", {"ids": str(items[0].pk), "confirm": "yes"})
    assert response.status_code == 403
    assert MediaItem.objects.count() == 1


def test_transform_selection_with_a_bad_size_is_422(signed):
    items = items_make(1)
    response = signed.post(
        "/selection/transform", {"ids": str(items[0].pk), "format": "png", "scale": "long", "size": ""}
    )
    assert response.status_code == 422
    assert "Enter the size in pixels" in response.content.decode()


@pytest.mark.parametrize("ids", ["²", "99999999999999999999", "0", "-3"])
def test_a_selection_with_an_id_that_is_not_an_item_id_is_refused_not_a_500(signed, ids):
    items_make(1)
    response = signed.post("/selection/delete", {"ids": ids, "confirm": "yes"})
    assert response.status_code == 422
    assert MediaItem.objects.count() == 1
