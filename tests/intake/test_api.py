"""Intake API (docs/intake.md#api): CRUD, bulk add of URL lists, process (202 with the media
job), review, progress; bad input is a 4xx with an `intake.*` code and nothing half-saved.
SQLite and MariaDB."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.intake import services
from apps.intake.models import IntakeEntry
from apps.media.services import media_upload_bulk_run
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


def _plan(api: APIClient, dataset, **body: object) -> dict:  # type: ignore[no-untyped-def]
    response = api.post("/api/intake", {"kind": "urls", "dataset": dataset.pk, **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_read_list_patch_delete(api: APIClient, dataset, subset) -> None:  # type: ignore[no-untyped-def]
    created = _plan(
        api,
        dataset,
        subset=subset.pk,
        urls="https://example.com/a.jpg\nhttps://example.com/b.jpg",
        notes="artist page",
    )
    assert (created["state"], created["planned_count"], created["subset_name"]) == ("planned", 2, "Alice")
    assert created["on_arrival"] == {}
    listed = api.get("/api/intake", {"dataset": dataset.pk, "state": "planned"}).json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    patched = api.patch(
        f"/api/intake/{created['id']}", {"planned_count": 10, "title": "Alice, set 1"}, format="json"
    )
    assert patched.json()["name"] == "Alice, set 1"
    assert api.delete(f"/api/intake/{created['id']}").status_code == 204
    assert api.get(f"/api/intake/{created['id']}").status_code == 404


def test_bulk_adds_one_entry_per_url(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/intake/bulk",
        {
            "dataset": dataset.pk,
            "urls": "https://example.com/a.jpg\nhttps://example.com/b.jpg",
            "split": True,
        },
        format="json",
    )
    assert response.status_code == 201
    assert [row["urls"] for row in response.json()] == [
        ["https://example.com/a.jpg"],
        ["https://example.com/b.jpg"],
    ]


def test_malformed_list_is_a_400_with_every_line(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/intake/bulk",
        {"dataset": dataset.pk, "urls": ["https://example.com/a.jpg", "javascript:alert(1)", "https://"]},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "intake.bad_urls"
    assert [line["line"] for line in body["details"]["lines"]] == [2, 3]
    assert not IntakeEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"dataset": 999_999}, "intake.unknown_dataset"),
        ({"subset": 999_999}, "intake.unknown_subset"),
        ({"kind": "nonsense"}, "intake.invalid"),
        ({"kind": "folder", "folder": "../../etc"}, "intake.folder_outside_root"),
        ({"kind": "query", "query": "(("}, "intake.bad_query"),
        ({"dataset": 2**40}, "intake.invalid"),
    ],
)
def test_bad_input_is_a_400(api: APIClient, dataset, folder_root, body, code) -> None:  # type: ignore[no-untyped-def]
    response = api.post(
        "/api/intake",
        {"kind": "urls", "dataset": dataset.pk, "urls": ["https://e.com/a"], **body},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert not IntakeEntry.objects.exists()


def test_zip_entry_by_multipart(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    archive = mediafiles.zip_bytes({"a.jpg": mediafiles.image_bytes("jpeg", seed=90)})

    def post(on_arrival: str):  # type: ignore[no-untyped-def]
        body = {"kind": "archive", "dataset": dataset.pk, "archive": SimpleUploadedFile("one.zip", archive)}
        return api.post("/api/intake", {**body, "on_arrival": on_arrival}, format="multipart")

    unknown = post('{"scheme": "anime"}')
    assert unknown.status_code == 400
    assert "no tagging scheme 'anime'" in unknown.json()["message"]
    assert not IntakeEntry.objects.exists()
    response = post("{}")
    assert response.status_code == 201, response.json()
    assert (response.json()["archive_name"], response.json()["on_arrival"]) == ("one.zip", {})


def test_process_answers_202_with_the_job_then_progress(api: APIClient, dataset, url_server) -> None:  # type: ignore[no-untyped-def]
    created = _plan(api, dataset, urls=[url_server.url("/a.jpg"), url_server.url("/b.jpg")])
    response = api.post(f"/api/intake/{created['id']}/process")
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["job"]["url"]
    assert body["entry"]["state"] == "fetching"
    media_upload_bulk_run(job_id=body["job"]["id"])
    services.intake_entry_collect(entry_id=created["id"])
    entry = api.get(f"/api/intake/{created['id']}").json()
    assert (entry["state"], entry["added_count"], entry["added_percent"]) == ("added", 2, 100)
    assert len(api.get(f"/api/intake/{created['id']}/arrivals").json()["items"]) == 2
    again = api.post(f"/api/intake/{created['id']}/process")
    assert again.status_code == 409
    assert again.json()["code"] == "intake.not_processable"
    progress = api.get("/api/intake/progress").json()["datasets"]
    assert [(row["dataset_name"], row["planned"], row["added"], row["reviewed"]) for row in progress] == [
        ("Faces", 2, 2, 0)
    ]


def test_process_of_a_query_entry_answers_200(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    item = make_item(seed=3)
    created = _plan(api, dataset, kind="query", query="width:>1")
    response = api.post(f"/api/intake/{created['id']}/process")
    assert response.status_code == 200
    assert (response.json()["entry"]["state"], response.json()["job"]) == ("added", None)
    reviewed = api.post(f"/api/intake/{created['id']}/review", {"items": [item.pk]}, format="json")
    assert reviewed.json()["state"] == "reviewed"


def test_mark_tagged_needs_an_added_entry(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    created = _plan(api, dataset, urls=["https://e.com/a"])
    response = api.post(f"/api/intake/{created['id']}/mark-tagged")
    assert response.status_code == 409
    assert response.json()["code"] == "intake.not_added"


def test_viewer_reads_but_cannot_write(dataset, viewer) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get("/api/intake").status_code == 200
    assert (
        client.post(
            "/api/intake", {"kind": "urls", "dataset": dataset.pk, "urls": ["https://e.com/a"]}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/intake/bulk", {"dataset": dataset.pk, "urls": ["https://e.com/a"]}, format="json"
        ).status_code
        == 403
    )
    assert not IntakeEntry.objects.exists()


def test_unknown_state_filter_is_a_400(api: APIClient) -> None:
    response = api.get("/api/intake", {"state": "done"})
    assert response.status_code == 400
    assert response.json()["code"] == "intake.bad_state"


def test_folder_entry_is_stored_relative_to_the_root(api: APIClient, dataset, folder_root) -> None:  # type: ignore[no-untyped-def]
    created = _plan(api, dataset, kind="folder", folder="shoot/./day1/../day1")
    assert (created["folder"], created["planned_count"], created["name"]) == ("shoot/day1", 1, "shoot/day1")


def test_list_leaves_out_url_lists_and_detail_has_them(api: APIClient, dataset) -> None:  # type: ignore[no-untyped-def]
    created = _plan(api, dataset, urls=[f"https://example.com/{n}.jpg" for n in range(5)])
    (row,) = api.get("/api/intake").json()["results"]
    assert "urls" not in row
    assert row["name"] == "https://example.com/0.jpg and 4 more"
    assert len(api.get(f"/api/intake/{created['id']}").json()["urls"]) == 5
