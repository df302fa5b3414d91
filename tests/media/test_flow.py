"""Bulk upload end to end: API → staged files → a real Celery worker → items and per-input results."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, MediaSource
from apps.tags.models import TagSet
from tests import mediafiles
from tests.conftest import stored_files
from tests.media.factories import make_item

pytestmark = [pytest.mark.flow, pytest.mark.django_db(transaction=True)]


def wait_for(job_id: int, timeout: float = 90.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).status}")


def test_bulk_upload_ingests_good_inputs_and_reports_each_bad_one(
    api, celery_worker_thread, media_root, video_dir
):
    good = [mediafiles.image_bytes(fmt, seed=i) for i, fmt in enumerate(["jpeg", "png", "webp"])]
    archive = mediafiles.zip_bytes(
        {
            "set/one.jpg": mediafiles.image_bytes("jpeg", seed=20),
            "set/two.gif": mediafiles.image_bytes("gif", animated=True, seed=21),
            "set/broken.png": mediafiles.image_bytes("png", seed=22)[:100],
            "set/notes.txt": b"not media",
            "set/dupe.jpg": good[0],
        }
    )
    video = mediafiles.video_file(video_dir, "webm").read_bytes()
    files = [SimpleUploadedFile(f"f{i}.bin", data) for i, data in enumerate(good)]
    files += [SimpleUploadedFile("clip.webm", video), SimpleUploadedFile("empty.jpg", b"")]
    response = api.post(
        "/api/media/upload-bulk",
        {
            "files": files,
            "archive": SimpleUploadedFile("batch.zip", archive),
            "urls": "http://127.0.0.1/loopback.jpg\nftp://example.com/x.jpg",
            "artist": "Studio",
            "tags": "batch",
            "tag_source": "my upload",
        },
        format="multipart",
    )
    assert response.status_code == 202, response.content
    body = response.json()["job"]
    assert response["Location"] == body["url"]
    job = wait_for(body["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.counts == {"created": 6, "duplicate": 1, "failed": 5}
    assert (job.progress_done, job.progress_total) == (12, 12)

    detail = api.get(body["url"]).json()
    by_input = {row["input"]: row for row in detail["items"]}
    assert by_input["set/dupe.jpg"]["status"] == "duplicate"
    assert by_input["set/dupe.jpg"]["object_id"] == by_input["f0.bin"]["object_id"]
    assert by_input["set/broken.png"]["error"]["code"] == "media.corrupt"
    assert by_input["set/notes.txt"]["error"]["code"] == "media.unsupported_type"
    assert by_input["empty.jpg"]["error"]["code"] == "media.empty"
    assert by_input["http://127.0.0.1/loopback.jpg"]["error"]["code"] == "media.url_refused"
    assert by_input["ftp://example.com/x.jpg"]["error"]["code"] == "media.url_refused"
    assert by_input["clip.webm"]["status"] == "created"

    assert MediaItem.objects.count() == 6
    assert MediaItem.objects.filter(kind="video").count() == 2  # the webm and the animated gif
    assert set(MediaItem.objects.values_list("artist", flat=True)) == {"Studio"}
    member = MediaSource.objects.get(archive_member="set/one.jpg")
    assert member.kind == "zip"
    assert member.import_job_id == job.pk
    # Every stored file belongs to an item; staged uploads are gone.
    keys = {p.relative_to(media_root).as_posix() for p in stored_files(media_root)}
    expected = set(MediaItem.objects.values_list("storage_key", flat=True)) | set(
        MediaItem.objects.values_list("thumbnail_key", flat=True)
    )
    assert keys == expected
    assert TagSet.objects.filter(origin_label="my upload").count() == 7  # 6 new + the duplicate


def test_bulk_upload_of_urls_as_items_with_their_own_tags(api, celery_worker_thread):
    response = api.post(
        "/api/media/upload-bulk",
        {
            "items": [
                {"url": "http://10.0.0.1/a.jpg", "tags": ["x"], "tag_source": "lan"},
                {"url": "https://[::1]/b.jpg"},
            ]
        },
        format="json",
    )
    assert response.status_code == 202
    job = wait_for(response.json()["job"]["id"])
    assert job.counts == {"failed": 2}
    assert set(JobItem.objects.filter(job=job).values_list("error_code", flat=True)) == {"media.url_refused"}


def test_bulk_upload_refuses_bad_requests_before_queueing(api, media_root):
    empty = api.post("/api/media/upload-bulk", {}, format="json")
    assert empty.status_code == 400
    assert empty.json()["code"] == "media.nothing_to_upload"
    no_source = api.post(
        "/api/media/upload-bulk", {"urls": ["https://example.com/a.jpg"], "tags": ["a"]}, format="json"
    )
    assert no_source.status_code == 400
    assert no_source.json()["code"] == "media.tag_source_required"
    bad_item = api.post(
        "/api/media/upload-bulk", {"items": [{"url": "https://e.com/a", "name": "a\x00"}]}, format="json"
    )
    assert bad_item.status_code == 400
    assert "items[0]" in bad_item.json()["message"]
    assert Job.objects.count() == 0
    assert stored_files(media_root) == []


def test_cancelled_bulk_upload_stops_and_cleans_staging(api, media_root):
    from apps.jobs import services as job_services
    from apps.media.services import media_upload_bulk_run

    files = [SimpleUploadedFile(f"{i}.png", mediafiles.image_bytes("png", seed=40 + i)) for i in range(3)]
    job_id = api.post("/api/media/upload-bulk", {"files": files}, format="multipart").json()["job"]["id"]
    # Cancel while queued: the worker's delivery then does nothing, and staging is removed.
    job_services.job_cancel(job=Job.objects.get(pk=job_id))
    media_upload_bulk_run(job_id=job_id)
    assert Job.objects.get(pk=job_id).status == Job.Status.CANCELLED
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_frame_capture_job_runs_on_the_worker(api, celery_worker_thread, video_dir):
    from apps.media.models import VideoFrame

    video = make_item(path=mediafiles.video_file(video_dir, "webm", seconds=3), filename="")
    response = api.post(f"/api/media/{video.pk}/frames", {"mode": "interval", "interval": 1.0}, format="json")
    assert response.status_code == 202
    job = wait_for(response.json()["job"]["id"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.counts == {"created": 3}
    assert sorted(VideoFrame.objects.filter(video=video).values_list("timestamp_ms", flat=True)) == [
        0,
        1000,
        2000,
    ]
