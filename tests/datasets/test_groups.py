"""Dataset groups (docs/datasets.md#groups) through the API with the seed's names: create,
search, append datasets, copy another group, nest, remove; cycles and non-members are a 400
and nothing changes. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.datasets import services
from apps.datasets.models import DatasetGroup, DatasetGroupEntry

pytestmark = pytest.mark.django_db
BASE = "/api/data-set-groups"


def _group(api: APIClient, name: str) -> int:
    response = api.post(BASE, {"name": name}, format="json")
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def _datasets(n: int) -> list[int]:
    return [services.dataset_create(name=f"D{i}").pk for i in range(n)]


def _flat(api: APIClient, group: int) -> list[int]:
    return [row["dataset"]["id"] for row in api.get(f"{BASE}/{group}/data-sets").json()["data_sets"]]


def test_append_keeps_order_and_ignores_repeats(api: APIClient) -> None:
    a, b, c = _datasets(3)
    group = _group(api, "Training")
    assert api.post(f"{BASE}/{group}/append-data-sets", {"data_sets": [b, a]}, format="json").json() == {
        "appended": 2
    }
    api.post(f"{BASE}/{group}/append-data-sets", {"data_sets": [a, c]}, format="json")
    assert _flat(api, group) == [b, a, c]


def test_search_and_detail(api: APIClient) -> None:
    _group(api, "Faces")
    other = _group(api, "Landscapes")
    found = api.get(f"{BASE}?search=land").json()["results"]
    assert [g["id"] for g in found] == [other]
    assert api.get(f"{BASE}/{other}").json()["slug"] == "landscapes"


def test_append_group_copies_its_datasets(api: APIClient) -> None:
    a, b, c = _datasets(3)
    source, target = _group(api, "S"), _group(api, "T")
    api.post(f"{BASE}/{source}/append-data-sets", {"data_sets": [b, c]}, format="json")
    api.post(f"{BASE}/{target}/append-data-sets", {"data_sets": [a]}, format="json")
    response = api.post(f"{BASE}/{target}/append-data-set-group", {"group": source}, format="json")
    assert response.json() == {"appended": 2}
    assert _flat(api, target) == [a, b, c]
    assert DatasetGroupEntry.objects.filter(group_id=source).count() == 2


def test_nested_groups_expand_in_place(api: APIClient) -> None:
    a, b = _datasets(2)
    inner, outer = _group(api, "Inner"), _group(api, "Outer")
    api.post(f"{BASE}/{inner}/append-data-sets", {"data_sets": [b]}, format="json")
    api.post(f"{BASE}/{outer}/append-data-sets", {"groups": [inner], "data_sets": [a]}, format="json")
    body = api.get(f"{BASE}/{outer}/data-sets").json()
    assert [row["via"] for row in body["data_sets"]] == [[outer], [outer, inner]]


def test_append_group_to_itself_is_400(api: APIClient) -> None:
    group = _group(api, "G")
    response = api.post(f"{BASE}/{group}/append-data-set-group", {"group": group}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.group_cycle"


def test_nesting_a_group_in_itself_is_400(api: APIClient) -> None:
    group = _group(api, "G")
    response = api.post(f"{BASE}/{group}/append-data-sets", {"groups": [group]}, format="json")
    assert response.status_code == 400
    assert not DatasetGroupEntry.objects.exists()


def test_cycle_through_nesting_is_400_and_nothing_saved(api: APIClient) -> None:
    (a,) = _datasets(1)
    top, middle, bottom = _group(api, "Top"), _group(api, "Middle"), _group(api, "Bottom")
    api.post(f"{BASE}/{top}/append-data-sets", {"groups": [middle]}, format="json")
    api.post(f"{BASE}/{middle}/append-data-sets", {"groups": [bottom]}, format="json")
    response = api.post(
        f"{BASE}/{bottom}/append-data-sets", {"groups": [top], "data_sets": [a]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.group_cycle"
    assert not DatasetGroupEntry.objects.filter(group_id=bottom).exists()


def test_copying_a_group_that_nests_the_target_is_400(api: APIClient) -> None:
    outer, inner = _group(api, "Outer"), _group(api, "Inner")
    api.post(f"{BASE}/{outer}/append-data-sets", {"groups": [inner]}, format="json")
    response = api.post(f"{BASE}/{inner}/append-data-set-group", {"group": outer}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.group_cycle"


def test_copying_a_group_whose_nested_group_holds_the_target_is_400(api: APIClient) -> None:
    source, nested, target = _group(api, "S"), _group(api, "N"), _group(api, "T")
    api.post(f"{BASE}/{source}/append-data-sets", {"groups": [nested]}, format="json")
    api.post(f"{BASE}/{nested}/append-data-sets", {"groups": [target]}, format="json")
    response = api.post(f"{BASE}/{target}/append-data-set-group", {"group": source}, format="json")
    assert response.status_code == 400


def test_remove_and_remove_of_non_members(api: APIClient) -> None:
    a, b, c = _datasets(3)
    group = _group(api, "G")
    api.post(f"{BASE}/{group}/append-data-sets", {"data_sets": [a, b]}, format="json")
    bad = api.post(f"{BASE}/{group}/remove-data-sets", {"data_sets": [a, c]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "datasets.not_in_group"
    assert _flat(api, group) == [a, b]
    assert api.post(f"{BASE}/{group}/remove-data-sets", {"data_sets": [a]}, format="json").json() == {
        "removed": 1
    }
    assert _flat(api, group) == [b]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data_sets": []},
        {"data_sets": ["x"]},
        {"data_sets": [0]},
        {"data_sets": [999_999]},
        {"groups": [2**40]},
    ],
)
def test_bad_append_bodies_are_400(api: APIClient, body: dict) -> None:
    group = _group(api, "G")
    response = api.post(f"{BASE}/{group}/append-data-sets", body, format="json")
    assert response.status_code == 400
    assert not DatasetGroupEntry.objects.exists()


def test_unknown_group_is_404_and_unknown_source_400(api: APIClient) -> None:
    group = _group(api, "G")
    assert api.get(f"{BASE}/999999/data-sets").status_code == 404
    response = api.post(f"{BASE}/{group}/append-data-set-group", {"group": 999_999}, format="json")
    assert response.status_code == 400


def test_duplicate_name_is_409(api: APIClient) -> None:
    _group(api, "G")
    assert api.post(BASE, {"name": "G"}, format="json").status_code == 409


def test_delete_keeps_datasets_and_unnests(api: APIClient) -> None:
    (a,) = _datasets(1)
    outer, inner = _group(api, "Outer"), _group(api, "Inner")
    api.post(f"{BASE}/{outer}/append-data-sets", {"groups": [inner]}, format="json")
    api.post(f"{BASE}/{inner}/append-data-sets", {"data_sets": [a]}, format="json")
    assert api.delete(f"{BASE}/{inner}").status_code == 204
    assert list(DatasetGroup.objects.values_list("pk", flat=True)) == [outer]
    assert not DatasetGroupEntry.objects.exists()


def test_viewer_cannot_write(viewer) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post(BASE, {"name": "G"}, format="json").status_code == 403
