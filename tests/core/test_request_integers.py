"""Every integer taken from a request is range-checked: 400 naming the field, never a 500
(issue 9 item 2; docs/api.md#integers). SQLite raised OverflowError for values past 64 bits."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.core.exceptions import DomainError
from apps.core.ints import INT_MAX, int_param
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"


@pytest.fixture
def client_api(curator) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(curator)
    return client


def assert_names_field(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["details"]["fields"]
    assert field in body["message"]


@pytest.mark.parametrize("value", [HUGE, "1e30", "-1", "1.5", "0x10", "²"])
def test_tag_sets_media_item_filter(client_api, value):
    assert_names_field(client_api.get(f"/api/tag-sets/?media_item={value}"), "media_item")


@pytest.mark.parametrize("value", [HUGE, "1e30"])
def test_tag_sets_search_media_item_filter(client_api, value):
    assert_names_field(client_api.get(f"/api/tag-sets/search?media_item={value}"), "media_item")


def test_descriptions_media_item_filter(client_api):
    assert_names_field(client_api.get(f"/api/descriptions/?media_item={HUGE}"), "media_item")


@pytest.mark.parametrize("field", ["parent", "video"])
def test_media_list_id_filters(client_api, field):
    assert_names_field(client_api.get(f"/api/media/?{field}={HUGE}"), field)


@pytest.mark.parametrize("field", ["width_min", "height_max", "size_min", "size_max"])
def test_media_list_size_filters(client_api, field):
    assert_names_field(client_api.get(f"/api/media/?{field}=1{HUGE}"), field)


def test_media_search_filters_and_limit(client_api):
    assert_names_field(client_api.get(f"/api/media/search?q=&parent={HUGE}"), "parent")
    assert_names_field(client_api.get("/api/media/search?q=&limit=²"), "limit")


def test_in_range_filters_still_filter(client_api):
    parent, child = items_make(2)
    child.parent = parent
    child.save(update_fields=["parent"])
    body = client_api.get(f"/api/media/?parent={parent.pk}").json()
    assert [row["id"] for row in body["results"]] == [child.pk]


# Pages answer input errors with 422 and the message beside the field (or the error page).
@pytest.mark.parametrize("field", ["parent", "video"])
def test_library_page_filters(curator, client, field):
    client.force_login(curator)
    response = client.get(f"/?{field}={HUGE}")
    assert response.status_code == 422
    assert b"A whole number from 1 to 2147483647." in response.content


def test_library_page_after_cursor(curator, client):
    client.force_login(curator)
    assert client.get("/?after=²").status_code == 422


def test_tag_operation_items_after_and_limit(client_api):
    items = items_make(2)
    preview = client_api.post(
        "/api/tags/bulk",
        {"action": "add", "tags": ["x"], "ids": [i.pk for i in items], "dry_run": True},
        format="json",
    ).json()
    url = f"/api/tag-operations/{preview['operation']['id']}/items"
    assert_names_field(client_api.get(f"{url}?after={HUGE}"), "after")
    assert_names_field(client_api.get(f"{url}?limit=0"), "limit")
    assert client_api.get(f"{url}?after=0&limit=1").json()["ids"] == [items[0].pk]


def test_transform_bulk_ids(client_api):
    response = client_api.post(
        "/api/media/transform-bulk", {"ids": [int(HUGE)], "recipe": {"ops": []}}, format="json"
    )
    assert_names_field(response, "ids")


def test_bulk_tag_operation_ids(client_api):
    response = client_api.post(
        "/api/tags/bulk", {"action": "add", "tags": ["x"], "ids": [int(HUGE)]}, format="json"
    )
    assert_names_field(response, "ids")


def test_description_body_integers(client_api):
    (item,) = items_make(1)
    response = client_api.post(
        "/api/descriptions/",
        {"media_item": item.pk, "text": "a cat", "box": [0, 0, int(HUGE), 1]},
        format="json",
    )
    assert_names_field(response, "box")


def test_tag_set_delete_row_version(client_api):
    (item,) = items_make(1)
    set_id = client_api.post(
        f"/api/media/{item.pk}/tag-sets", {"kind": "curated", "tags": ["a"]}, format="json"
    ).json()["id"]
    assert_names_field(client_api.delete(f"/api/tag-sets/{set_id}?row_version={HUGE}"), "row_version")


@pytest.mark.parametrize(
    "url", [f"/api/media/{HUGE}", f"/api/tag-sets/{HUGE}", f"/api/media/{HUGE}/tag-sets", f"/api/jobs/{HUGE}"]
)
def test_api_path_ids(client_api, url):
    assert_names_field(client_api.get(url), "id")


def test_page_path_ids(curator, client):
    client.force_login(curator)
    response = client.get(f"/items/{HUGE}/")
    assert response.status_code == 400
    assert b"id: A whole number" in response.content


def test_int_param_bounds():
    assert int_param(" 42 ", field="n") == 42
    assert int_param("", field="n", default=7) == 7
    assert int_param(str(INT_MAX), field="n") == INT_MAX
    with pytest.raises(DomainError) as err:
        int_param(str(INT_MAX + 1), field="n")
    assert err.value.details == {"fields": {"n": [f"A whole number from 0 to {INT_MAX}."]}}
