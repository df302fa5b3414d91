"""The datasets API under the seed's names (docs/datasets.md#api): `/api/data-sets/` with
`search`, `images`, `append-images`, `remove-images` (ids or a query); `/api/datasets/` stays
as an alias. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.datasets.models import Dataset, DatasetItem
from tests.tags.factories import items_make

pytestmark = pytest.mark.django_db
BASE = "/api/data-sets"


def _dataset(api: APIClient, name: str = "Faces") -> int:
    response = api.post(BASE, {"name": name}, format="json")
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def _members(api: APIClient, pk: int) -> list[int]:
    return [row["id"] for row in api.get(f"{BASE}/{pk}/images").json()["items"]]


def test_append_images_then_page_them(api: APIClient) -> None:
    pk = _dataset(api)
    ids = [item.pk for item in items_make(3)]
    response = api.post(f"{BASE}/{pk}/append-images", {"images": ids}, format="json")
    assert response.json() == {"changed": 3}
    assert _members(api, pk) == ids


def test_remove_images_by_id(api: APIClient) -> None:
    pk = _dataset(api)
    ids = [item.pk for item in items_make(3)]
    api.post(f"{BASE}/{pk}/append-images", {"images": ids}, format="json")
    assert api.post(f"{BASE}/{pk}/remove-images", {"images": ids[:2]}, format="json").json() == {"changed": 2}
    assert _members(api, pk) == ids[2:]
    assert Dataset.objects.get(pk=pk).explicit_count == 1


def test_removing_non_members_is_400_and_nothing_changes(api: APIClient) -> None:
    pk = _dataset(api)
    member, stranger = (item.pk for item in items_make(2))
    api.post(f"{BASE}/{pk}/append-images", {"images": [member]}, format="json")
    response = api.post(f"{BASE}/{pk}/remove-images", {"images": [member, stranger]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.not_members"
    assert str(stranger) in response.json()["message"]
    assert _members(api, pk) == [member]


def test_remove_images_by_query(api: APIClient) -> None:
    pk = _dataset(api)
    ids = [item.pk for item in items_make(3)]
    api.post(f"{BASE}/{pk}/append-images", {"images": ids}, format="json")
    response = api.post(f"{BASE}/{pk}/remove-images", {"query": f"id:>{ids[0]}"}, format="json")
    assert response.json() == {"changed": 2}
    assert _members(api, pk) == ids[:1]


def test_a_query_matching_no_member_is_400(api: APIClient) -> None:
    pk = _dataset(api)
    ids = [item.pk for item in items_make(2)]
    api.post(f"{BASE}/{pk}/append-images", {"images": ids[:1]}, format="json")
    response = api.post(f"{BASE}/{pk}/remove-images", {"query": f"id:{ids[1]}"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.not_members"
    assert DatasetItem.objects.filter(dataset_id=pk).count() == 1


@pytest.mark.parametrize("body", [{}, {"images": [1], "query": "id:1"}, {"images": []}, {"images": ["x"]}])
def test_bad_remove_bodies_are_400(api: APIClient, body: dict) -> None:
    pk = _dataset(api)
    response = api.post(f"{BASE}/{pk}/remove-images", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.invalid"


def test_search_by_name_or_slug(api: APIClient) -> None:
    _dataset(api, "Faces")
    other = _dataset(api, "Landscapes")
    found = api.get(f"{BASE}/search?q=LAND").json()["results"]
    assert [row["id"] for row in found] == [other]


def test_old_spelling_is_an_alias(api: APIClient) -> None:
    pk = _dataset(api)
    assert api.get(f"/api/datasets/{pk}").json()["id"] == pk
    item = items_make(1)[0].pk
    response = api.post(f"/api/datasets/{pk}/items", {"action": "add", "items": [item]}, format="json")
    assert response.json() == {"changed": 1}
    assert api.get(f"{BASE}/{pk}/subsets").status_code == 200


def test_viewer_cannot_append(viewer) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(viewer)
    dataset = Dataset.objects.create(name="Faces", slug="faces")
    response = client.post(f"{BASE}/{dataset.pk}/append-images", {"images": [1]}, format="json")
    assert response.status_code == 403
