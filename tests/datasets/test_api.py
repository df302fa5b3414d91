"""Datasets API (docs/datasets.md#api): CRUD, items, members, validate, subsets; bad input is a
4xx with a `datasets.*` code and nothing half-saved. Runs on SQLite and on MariaDB."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.datasets.models import Dataset, DatasetItem, Subset
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


def _create(api: APIClient, **body: object) -> dict:
    response = api.post("/api/datasets", {"name": "Faces", **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_and_read_back(api: APIClient) -> None:
    created = _create(api, purpose="LoRA", requirements={"min_width": 512, "formats": ["PNG"]})
    got = api.get(f"/api/datasets/{created['id']}").json()
    assert got["slug"] == "faces"
    assert got["requirements"]["min_width"] == 512
    assert got["requirements"]["formats"] == ["png"]


def test_list_is_paged(api: APIClient) -> None:
    _create(api)
    body = api.get("/api/datasets").json()
    assert [d["name"] for d in body["results"]] == ["Faces"]


def test_patch_replaces_requirements(api: APIClient) -> None:
    created = _create(api, requirements={"min_width": 512})
    response = api.patch(
        f"/api/datasets/{created['id']}", {"requirements": {"max_width": 100}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["requirements"]["min_width"] is None
    assert response.json()["requirements"]["max_width"] == 100


def test_contradiction_refused_and_nothing_saved(api: APIClient) -> None:
    response = api.post(
        "/api/datasets", {"name": "X", "requirements": {"min_height": 9, "max_height": 1}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.bad_requirements"
    assert not Dataset.objects.exists()


def test_patch_with_contradiction_keeps_the_old_state(api: APIClient) -> None:
    created = _create(api, requirements={"min_width": 5})
    response = api.patch(
        f"/api/datasets/{created['id']}",
        {"description": "new", "requirements": {"alpha": "required", "formats": ["jpeg"]}},
        format="json",
    )
    assert response.status_code == 400
    got = api.get(f"/api/datasets/{created['id']}").json()
    assert got["description"] == ""
    assert got["requirements"]["min_width"] == 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "datasets.invalid"),
        ({"name": "Y", "requirements": {"min_width": -1}}, "datasets.invalid"),
        ({"name": "Y", "requirements": {"min_width": 2**40}}, "datasets.invalid"),
        ({"name": "Y", "requirements": {"alpha": "maybe"}}, "datasets.invalid"),
        ({"name": "Y", "query": "a and (b"}, "datasets.bad_query"),
        ({"name": "Y", "requirements": {"required_tag_types": ["nope"]}}, "datasets.bad_requirements"),
    ],
)
def test_bad_create_is_400(api: APIClient, body: dict, code: str) -> None:
    response = api.post("/api/datasets", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Dataset.objects.exists()


def test_duplicate_name_is_409(api: APIClient) -> None:
    _create(api)
    response = api.post("/api/datasets", {"name": "Faces"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "datasets.duplicate"


def test_unknown_dataset_is_404(api: APIClient) -> None:
    response = api.get("/api/datasets/999999/validate")
    assert response.status_code == 404
    assert response.json()["code"] == "datasets.not_found"


def test_items_members_and_validate(api: APIClient) -> None:
    small, big = make_item(seed=1, size=(32, 32)), make_item(seed=2, size=(64, 64))
    created = _create(api, requirements={"min_width": 48})
    url = f"/api/datasets/{created['id']}"
    added = api.post(f"{url}/items", {"action": "add", "items": [small.pk, big.pk]}, format="json")
    assert added.json() == {"changed": 2}
    first = api.get(f"{url}/members", {"limit": 1}).json()
    second = api.get(f"{url}/members", {"limit": 1, "after": first["next_after"]}).json()
    assert [i["id"] for i in first["items"] + second["items"]] == [small.pk, big.pk]
    assert second["next_after"] is None
    report = api.get(f"{url}/validate").json()
    assert report["failing"] == 1
    assert report["requirements"][0] == {
        "requirement": "min_width",
        "limit": 48,
        "count": 1,
        "items": [{"id": small.pk, "value": 32}],
        "next_after": None,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "add", "items": [99_999_999]}, "datasets.unknown_items"),
        ({"action": "add", "items": ["x"]}, "datasets.invalid"),
        ({"action": "add", "items": [2**40]}, "datasets.invalid"),
        ({"action": "add", "items": []}, "datasets.invalid"),
        ({"action": "zap", "items": [1]}, "datasets.invalid"),
        ({"action": "remove", "items": ["ITEM"]}, "datasets.not_members"),
    ],
)
def test_bad_items_are_400_and_nothing_saved(api: APIClient, body: dict, code: str) -> None:
    item = make_item(seed=1)
    created = _create(api)
    body = {**body, "items": [item.pk if i == "ITEM" else i for i in body["items"]]}
    response = api.post(f"/api/datasets/{created['id']}/items", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not DatasetItem.objects.exists()


@pytest.mark.parametrize("query", ["after=-1", "limit=0", "limit=201", "after=x"])
def test_bad_member_paging_is_400(api: APIClient, query: str) -> None:
    created = _create(api)
    response = api.get(f"/api/datasets/{created['id']}/members?{query}")
    assert response.status_code == 400


def test_viewer_cannot_write(viewer) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(viewer)
    response = client.post("/api/datasets", {"name": "Z"}, format="json")
    assert response.status_code == 403
    assert not Dataset.objects.exists()


def test_viewer_cannot_edit_items(api: APIClient, viewer) -> None:  # type: ignore[no-untyped-def]
    item = make_item(seed=1)
    created = _create(api)
    client = APIClient()
    client.force_authenticate(viewer)
    response = client.post(
        f"/api/datasets/{created['id']}/items", {"action": "add", "items": [item.pk]}, format="json"
    )
    assert response.status_code == 403
    assert not DatasetItem.objects.exists()


def test_delete(api: APIClient) -> None:
    created = _create(api)
    assert api.delete(f"/api/datasets/{created['id']}").status_code == 204
    assert not Dataset.objects.exists()


def test_subsets_nested(api: APIClient) -> None:
    cat, dog = make_item(["cat"], seed=1), make_item(["dog"], seed=2)
    created = _create(api, query="cat or dog")
    base = f"/api/datasets/{created['id']}/subsets"
    subset = api.post(base, {"name": "Cats", "query": "cat"}, format="json").json()
    api.post(f"{base}/{subset['id']}/items", {"action": "exclude", "items": [cat.pk]}, format="json")
    api.post(f"{base}/{subset['id']}/items", {"action": "add", "items": [dog.pk]}, format="json")
    members = api.get(f"{base}/{subset['id']}/members").json()
    assert [i["id"] for i in members["items"]] == [dog.pk]
    assert [s["name"] for s in api.get(base).json()["results"]] == ["Cats"]


def test_subset_of_another_dataset_is_404(api: APIClient) -> None:
    one, two = _create(api), _create(api, name="Other")
    subset = api.post(f"/api/datasets/{one['id']}/subsets", {"name": "S"}, format="json").json()
    response = api.get(f"/api/datasets/{two['id']}/subsets/{subset['id']}")
    assert response.status_code == 404
    assert response.json()["code"] == "datasets.subset_not_found"


def test_bad_subset_query_is_400(api: APIClient) -> None:
    created = _create(api)
    response = api.post(f"/api/datasets/{created['id']}/subsets", {"name": "S", "query": "(("}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "datasets.bad_query"
    assert not Subset.objects.exists()


def test_subset_patch_and_delete(api: APIClient) -> None:
    created = _create(api)
    base = f"/api/datasets/{created['id']}/subsets"
    subset = api.post(base, {"name": "S"}, format="json").json()
    patched = api.patch(f"{base}/{subset['id']}", {"description": "reg images"}, format="json")
    assert patched.json()["description"] == "reg images"
    assert api.delete(f"{base}/{subset['id']}").status_code == 204
    assert not Subset.objects.exists()
