"""Intake end to end with a real Celery worker: the API plans and processes entries of local
URLs and a zip, the media job runs on the worker, and the entry is collected into the dataset
when the job ends (the worker's task_postrun receiver); a refused URL fails its entry."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets import selectors as dataset_selectors
from apps.intake.models import IntakeEntry
from apps.jobs.models import Job
from apps.media.models import MediaItem
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = [pytest.mark.flow, pytest.mark.django_db(transaction=True)]


def wait_for_entry(entry_id: int, timeout: float = 90.0) -> IntakeEntry:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = IntakeEntry.objects.get(pk=entry_id)
        if entry.state != IntakeEntry.State.FETCHING:
            return entry
        time.sleep(0.2)
    raise AssertionError(f"entry {entry_id} is still fetching")


def test_url_and_zip_entries_arrive_through_the_worker(
    api, dataset, subset, url_server, celery_worker_thread
) -> None:  # type: ignore[no-untyped-def]
    planned = api.post(
        "/api/intake",
        {
            "kind": "urls",
            "dataset": dataset.pk,
            "subset": subset.pk,
            "urls": [url_server.url("/a.jpg"), url_server.url("/b.jpg"), url_server.url("/missing.jpg")],
        },
        format="json",
    ).json()
    archive = mediafiles.zip_bytes(
        {"x.png": mediafiles.image_bytes("png", seed=95), "again.jpg": url_server.bodies["/a.jpg"]}
    )
    zipped = api.post(
        "/api/intake",
        {"kind": "archive", "dataset": dataset.pk, "archive": SimpleUploadedFile("x.zip", archive)},
        format="multipart",
    ).json()

    first = api.post(f"/api/intake/{planned['id']}/process")
    assert first.status_code == 202
    entry = wait_for_entry(planned["id"])
    assert (entry.state, entry.added_count, entry.failed_count) == (IntakeEntry.State.ADDED, 2, 1)
    assert "/missing.jpg" in entry.error_message
    assert Job.objects.get(pk=entry.job_id).outcome == "succeeded_with_failures"

    assert api.post(f"/api/intake/{zipped['id']}/process").status_code == 202
    zipped_entry = wait_for_entry(zipped["id"])
    assert (zipped_entry.state, zipped_entry.added_count) == (IntakeEntry.State.ADDED, 2)

    assert MediaItem.objects.count() == 3  # the zip's copy of a.jpg is the same item
    members = set(dataset_selectors.dataset_members(dataset=dataset).values_list("pk", flat=True))
    assert members == set(MediaItem.objects.values_list("pk", flat=True))
    assert dataset_selectors.subset_members(subset=subset).count() == 2
    assert url_server.hits["/a.jpg"] == 1
    progress = api.get("/api/intake/progress").json()["datasets"]
    assert [(row["planned"], row["added"]) for row in progress] == [(5, 4)]


def test_refused_url_fails_the_entry_and_its_job(api, dataset, celery_worker_thread) -> None:  # type: ignore[no-untyped-def]
    planned = api.post(
        "/api/intake",
        {"kind": "urls", "dataset": dataset.pk, "urls": ["http://127.0.0.1/x.jpg"]},
        format="json",
    ).json()
    assert api.post(f"/api/intake/{planned['id']}/process").status_code == 202
    entry = wait_for_entry(planned["id"])
    assert (entry.state, entry.error_code) == (IntakeEntry.State.FAILED, "jobs.all_inputs_failed")
    assert "only public hosts" in entry.error_message
    assert Job.objects.get(pk=entry.job_id).status == Job.Status.FAILED
    body = api.get(f"/api/intake/{planned['id']}").json()
    assert body["error"]["code"] == "jobs.all_inputs_failed"


def test_video_entry_frames_arrive_through_the_worker(api, dataset, video_dir, celery_worker_thread) -> None:  # type: ignore[no-untyped-def]
    video = make_item(path=mediafiles.video_file(video_dir, "webm"))
    planned = api.post(
        "/api/intake",
        {
            "kind": "video",
            "dataset": dataset.pk,
            "video": video.pk,
            "frame_plan": {"mode": "interval", "interval": 0.5},
        },
        format="json",
    ).json()
    assert planned["planned_count"] == 4
    assert api.post(f"/api/intake/{planned['id']}/process").status_code == 202
    entry = wait_for_entry(planned["id"])
    assert (entry.state, entry.added_count) == (IntakeEntry.State.ADDED, 4)
    members = dataset_selectors.dataset_members(dataset=dataset)
    assert set(members.values_list("kind", flat=True)) == {"frame"}
    assert set(members.values_list("video_id", flat=True)) == {video.pk}
