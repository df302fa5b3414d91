"""Editing datasets on pages (docs/datasets.md#pages): the dataset form with query errors, the
requirement editor's contradictions, subsets, the member gallery with exclude/unexclude, the
library selection's "Add to dataset…", the item page's Datasets panel, snapshots and groups."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.datasets import selectors, services
from apps.datasets.models import Dataset, DatasetGroupEntry, DatasetItem, Requirements, Snapshot, Subset
from apps.datasets.services.snapshots import snapshot_create
from tests.tags.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, curator) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(curator)
    return client


def _members(dataset: Dataset) -> list[int]:
    return sorted(selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))


def test_create_dataset_on_the_page(signed_in: Client) -> None:
    response = signed_in.post("/datasets/new", {"name": "Faces", "query": "smile", "purpose": "LoRA"})
    dataset = Dataset.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert (dataset.query, dataset.purpose) == ("smile", "LoRA")


def test_a_query_that_does_not_parse_is_shown_and_nothing_saved(signed_in: Client) -> None:
    response = signed_in.post("/datasets/new", {"name": "Faces", "query": "(smile"})
    assert response.status_code == 422
    assert 'data-field-error="query"' in response.content.decode()
    assert not Dataset.objects.exists()


def test_edit_keeps_the_old_query_when_the_new_one_fails(signed_in: Client) -> None:
    dataset = services.dataset_create(name="Faces", query="smile")
    response = signed_in.post(f"/datasets/{dataset.pk}/edit", {"name": "Faces", "query": "width:abc"})
    assert response.status_code == 422
    assert Dataset.objects.get(pk=dataset.pk).query == "smile"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_width": "900", "max_width": "100", "alpha": "any"}, "min_width"),
        ({"alpha": "required", "formats": "jpeg"}, "alpha"),
        ({"alpha": "flatten"}, "flatten_color"),
        ({"alpha": "any", "required_tag_types": "nope"}, "required_tag_types"),
    ],
)
def test_requirement_contradictions_are_field_errors(signed_in: Client, body: dict, field: str) -> None:
    dataset = services.dataset_create(name="Faces", requirements={"min_height": 10})
    response = signed_in.post(f"/datasets/{dataset.pk}/requirements", body)
    assert response.status_code == 422
    assert f'data-field-error="{field}"' in response.content.decode()
    req = Requirements.objects.get(dataset=dataset)
    assert (req.min_height, req.min_width, req.alpha) == (10, None, "any")


def test_requirements_saved_from_the_editor(signed_in: Client) -> None:
    dataset = services.dataset_create(name="Faces")
    body = {"min_width": "512", "formats": "PNG, webp", "alpha": "forbidden"}
    assert signed_in.post(f"/datasets/{dataset.pk}/requirements", body).status_code == 303
    req = Requirements.objects.get(dataset=dataset)
    assert (req.min_width, req.formats, req.alpha) == (512, ["png", "webp"], "forbidden")
    page = signed_in.get(f"/datasets/{dataset.pk}/requirements").content.decode()
    assert 'value="png, webp"' in page


def test_subset_create_edit_delete(signed_in: Client) -> None:
    dataset = services.dataset_create(name="Faces")
    assert signed_in.post(f"/datasets/{dataset.pk}/subsets/new", {"name": "Close ups"}).status_code == 303
    subset = Subset.objects.get()
    signed_in.post(
        f"/datasets/{dataset.pk}/subsets/{subset.pk}/edit", {"name": "Close ups", "query": "smile"}
    )
    assert Subset.objects.get().query == "smile"
    bad = signed_in.post(f"/datasets/{dataset.pk}/subsets/{subset.pk}/edit", {"name": "X", "query": "(("})
    assert bad.status_code == 422
    assert signed_in.post(f"/datasets/{dataset.pk}/subsets/{subset.pk}/delete").status_code == 303
    assert not Subset.objects.exists()


def test_unknown_subset_is_404(signed_in: Client) -> None:
    dataset = services.dataset_create(name="Faces")
    other = services.dataset_create(name="Other")
    foreign = services.subset_create(dataset=other, name="S")
    assert signed_in.get(f"/datasets/{dataset.pk}/subsets/{foreign.pk}/edit").status_code == 404
    assert signed_in.get(f"/datasets/{dataset.pk}/members?subset={foreign.pk}").status_code == 404


def test_member_gallery_pages_and_narrows(signed_in: Client) -> None:
    items = [make_item(["smile"] if i % 2 else [], seed=i) for i in range(4)]
    dataset = services.dataset_create(name="Faces")
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    html = signed_in.get(f"/datasets/{dataset.pk}/members?q=smile").content.decode()
    shown = {i.pk for i in items if f'data-item="{i.pk}"' in html}
    assert shown == {items[1].pk, items[3].pk}
    bad = signed_in.get(f"/datasets/{dataset.pk}/members?q=((")
    assert bad.status_code == 422
    assert "data-query-error" in bad.content.decode()


def test_member_gallery_keyset_pages(signed_in: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.datasets.views import edit

    monkeypatch.setattr(edit, "GALLERY_SIZE", 2)
    items = [make_item(seed=i) for i in range(3)]
    dataset = services.dataset_create(name="Faces")
    services.members_edit(owner=dataset, action="add", item_ids=[i.pk for i in items])
    first = signed_in.get(f"/datasets/{dataset.pk}/members").content.decode()
    assert f"after={items[1].pk}" in first
    more = signed_in.get(f"/datasets/{dataset.pk}/members?after={items[1].pk}", HTTP_HX_REQUEST="true")
    assert f'data-item="{items[0].pk}"' in more.content.decode()
    assert "<ul" not in more.content.decode()


def test_exclude_and_unexclude_from_the_gallery(signed_in: Client) -> None:
    a, b = make_item(["smile"], seed=1), make_item(["smile"], seed=2)
    dataset = services.dataset_create(name="Faces", query="smile")
    url = f"/datasets/{dataset.pk}/members/edit"
    assert signed_in.post(url, {"ids": f"{a.pk}", "action": "exclude", "q": "smile"}).status_code == 303
    assert _members(dataset) == [b.pk]
    excluded = signed_in.get(f"/datasets/{dataset.pk}/members?show=excluded").content.decode()
    assert f'data-item="{a.pk}"' in excluded
    signed_in.post(url, {"ids": f"{a.pk}", "action": "unexclude", "show": "excluded"})
    assert _members(dataset) == [a.pk, b.pk]


def test_gallery_edit_of_non_members_is_refused_and_nothing_changes(signed_in: Client) -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="Faces")
    response = signed_in.post(
        f"/datasets/{dataset.pk}/members/edit", {"ids": f"{item.pk}", "action": "remove"}
    )
    assert response.status_code == 422  # pages answer bad input 422 (apps/core/middleware.py)
    assert not DatasetItem.objects.exists()


def test_library_offers_the_selection_action(signed_in: Client) -> None:
    make_item(seed=1)
    html = signed_in.get("/").content.decode()
    assert 'formaction="/datasets/selection/add"' in html


def test_library_hides_the_action_from_viewers(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    assert "Add to dataset" not in client.get("/").content.decode()


def test_add_from_the_selection_asks_then_adds(signed_in: Client) -> None:
    a, b = make_item(seed=1), make_item(seed=2)
    dataset = services.dataset_create(name="Faces")
    ask = signed_in.post("/datasets/selection/add", {"ids": f"{a.pk} {b.pk}"})
    assert ask.status_code == 200
    assert "Add 2 items" in ask.content.decode()
    done = signed_in.post("/datasets/selection/add", {"ids": f"{a.pk} {b.pk}", "dataset": dataset.pk})
    assert done.status_code == 303
    assert _members(dataset) == [a.pk, b.pk]


def test_add_from_the_selection_to_a_subset_and_to_an_unknown_one(signed_in: Client) -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="Faces")
    subset = services.subset_create(dataset=dataset, name="Close ups")
    bad = signed_in.post(
        "/datasets/selection/add", {"ids": f"{item.pk}", "dataset": dataset.pk, "subset": "x"}
    )
    assert bad.status_code == 422
    assert not DatasetItem.objects.exists()
    body = {"ids": f"{item.pk}", "dataset": dataset.pk, "subset": "close-ups"}
    assert signed_in.post("/datasets/selection/add", body).status_code == 303
    assert list(selectors.subset_members(subset=subset).values_list("pk", flat=True)) == [item.pk]


def test_item_page_panel_adds_and_removes(signed_in: Client) -> None:
    item = make_item(["smile"], seed=1)
    picked = services.dataset_create(name="Picked")
    by_query = services.dataset_create(name="Smiles", query="smile")
    panel = signed_in.get(f"/items/{item.pk}/").content.decode()
    assert 'id="datasets"' in panel
    assert f'data-membership="{by_query.pk}"' in panel
    url = f"/datasets/items/{item.pk}/membership"
    assert signed_in.post(url, {"dataset": picked.pk, "action": "add"}).status_code == 303
    assert _members(picked) == [item.pk]
    signed_in.post(url, {"dataset": picked.pk, "action": "remove"})
    assert _members(picked) == []
    assert signed_in.post(url, {"dataset": 999_999, "action": "add"}).status_code == 404


def test_freeze_and_diff_pages(signed_in: Client) -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="Faces")
    first = snapshot_create(dataset=dataset)
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk])
    assert signed_in.post(f"/datasets/{dataset.pk}/snapshots", {"note": "v2"}).status_code == 303
    second = Snapshot.objects.get(number=2)
    page = signed_in.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "#2" in page
    diff = signed_in.get(f"/datasets/{dataset.pk}/snapshots/diff?a={first.pk}&b={second.pk}").content.decode()
    assert "Added: 1" in diff
    assert signed_in.get(f"/datasets/{dataset.pk}/snapshots/diff?a={first.pk}&b=999999").status_code == 404


def test_group_pages(signed_in: Client) -> None:
    dataset = services.dataset_create(name="Faces")
    assert signed_in.post("/datasets/groups/", {"name": "Run 1"}).status_code == 303
    group_id = (
        signed_in.get("/datasets/groups/?search=run")
        .content.decode()
        .split("/datasets/groups/")[1]
        .split("/")[0]
    )
    edit = f"/datasets/groups/{group_id}/edit"
    assert signed_in.post(edit, {"op": "append", "data_sets": dataset.pk}).status_code == 303
    assert "Faces" in signed_in.get(f"/datasets/groups/{group_id}/").content.decode()
    itself = signed_in.post(edit, {"op": "copy", "group": group_id})
    assert itself.status_code == 422
    assert "data-group-error" in itself.content.decode()
    assert signed_in.post(edit, {"op": "remove", "data_sets": 999_999}).status_code == 422
    assert DatasetGroupEntry.objects.count() == 1


def test_viewer_cannot_edit(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    dataset = services.dataset_create(name="Faces")
    assert client.post("/datasets/new", {"name": "X"}).status_code == 403
    assert client.post(f"/datasets/{dataset.pk}/requirements", {"alpha": "any"}).status_code == 403


def test_snapshot_page_lists_frozen_members(signed_in: Client) -> None:
    item = make_item(seed=1)
    dataset = services.dataset_create(name="Faces")
    services.members_edit(owner=dataset, action="add", item_ids=[item.pk])
    snapshot = snapshot_create(dataset=dataset)
    html = signed_in.get(f"/datasets/{dataset.pk}/snapshots/{snapshot.pk}/").content.decode()
    assert f'data-item="{item.pk}"' in html
    assert signed_in.get(f"/datasets/{dataset.pk}/snapshots/{snapshot.pk}/?subset=nope").status_code == 404
