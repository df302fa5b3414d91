"""Licence notes on datasets (docs/datasets.md): set through the API, the dataset form and the
admin; bad input is a 400 `datasets.invalid` naming `licence_notes`, nothing saved. Runs on SQLite
and on MariaDB."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.datasets import services
from apps.datasets.models import Dataset
from apps.datasets.services.datasets import MAX_LICENCE_NOTES

pytestmark = pytest.mark.django_db

NOTES = "Images CC-BY-4.0 (artist: someone);\nderived crops under the same terms."


def test_set_read_and_patch_through_the_api(api: APIClient) -> None:
    created = api.post("/api/datasets", {"name": "Faces", "licence_notes": NOTES}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert api.get(f"/api/datasets/{pk}").json()["licence_notes"] == NOTES
    patched = api.patch(f"/api/datasets/{pk}", {"licence_notes": "  CC0  "}, format="json")
    assert patched.status_code == 200
    assert patched.json()["licence_notes"] == "CC0"
    assert Dataset.objects.get(pk=pk).licence_notes == "CC0"
    cleared = api.patch(f"/api/datasets/{pk}", {"licence_notes": ""}, format="json")
    assert cleared.json()["licence_notes"] == ""


@pytest.mark.parametrize(
    "notes",
    ["x" * (MAX_LICENCE_NOTES + 1), "CC\x00BY", "bell\x07", ["CC0"], {"a": 1}, None],
    ids=["too-long", "nul", "control", "list", "object", "null"],
)
def test_bad_notes_are_400_and_nothing_saved(api: APIClient, notes: object) -> None:
    response = api.post("/api/datasets", {"name": "Faces", "licence_notes": notes}, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "datasets.invalid"
    assert "licence_notes" in str(body)
    assert not Dataset.objects.exists()
    dataset = services.dataset_create(name="Kept", licence_notes="CC0")
    patched = api.patch(f"/api/datasets/{dataset.pk}", {"licence_notes": notes}, format="json")
    assert patched.status_code == 400
    dataset.refresh_from_db()
    assert dataset.licence_notes == "CC0"


def test_longest_notes_are_accepted() -> None:
    dataset = services.dataset_create(name="Long", licence_notes="y" * MAX_LICENCE_NOTES)
    assert len(dataset.licence_notes) == MAX_LICENCE_NOTES


def test_dataset_form_and_page(client: Client, curator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(curator)
    response = client.post("/datasets/new", {"name": "Faces", "licence_notes": NOTES})
    assert response.status_code == 303
    dataset = Dataset.objects.get()
    assert dataset.licence_notes == NOTES
    assert "Licence notes:" in client.get(f"/datasets/{dataset.pk}/").content.decode()
    edit = client.get(f"/datasets/{dataset.pk}/edit").content.decode()
    assert 'name="licence_notes"' in edit
    bad = client.post(f"/datasets/{dataset.pk}/edit", {"name": "Faces", "licence_notes": "z" * 5000})
    assert bad.status_code == 422
    assert 'data-field-error="licence_notes"' in bad.content.decode()
    dataset.refresh_from_db()
    assert dataset.licence_notes == NOTES


def test_admin_edits_the_notes_with_the_same_check(admin_client: Client) -> None:
    from apps.datasets.admin import DatasetForm

    dataset = services.dataset_create(name="Faces")
    page = admin_client.get(f"/admin/datasets/dataset/{dataset.pk}/change/")
    assert page.status_code == 200
    assert 'name="licence_notes"' in page.content.decode()
    base = {"name": "Faces", "slug": "faces", "description": "", "purpose": "", "query": ""}
    bad = DatasetForm(data={**base, "licence_notes": "CC\x07"}, instance=dataset)
    assert not bad.is_valid()
    assert "control characters" in str(bad.errors["licence_notes"])
    good = DatasetForm(data={**base, "licence_notes": " CC0 "}, instance=dataset)
    assert good.is_valid(), good.errors
    assert good.cleaned_data["licence_notes"] == "CC0"
