"""Pages: sign-in required, gallery with filters and keyset paging, item page, upload form, delete."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.media.services import Origin, media_ingest, metadata_clean
from tests import mediafiles

pytestmark = pytest.mark.django_db


def make_item(user, seed: int = 0, fmt: str = "jpeg", **meta) -> MediaItem:
    return media_ingest(
        stream=io.BytesIO(mediafiles.image_bytes(fmt, seed=seed)),
        origin=Origin(kind="upload", original_filename=f"img{seed}.{fmt}"),
        metadata=metadata_clean(**meta),
        added_by=user,
    ).item


@pytest.mark.parametrize("url", ["/", "/upload/", "/jobs/", "/items/1/"])
def test_pages_redirect_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_login_page_signs_in_and_rejects_wrong_password(client, curator):
    bad = client.post("/login/", {"username": "curator", "password": "nope"})
    assert bad.status_code == 200 and "Wrong user name or password" in bad.content.decode()
    good = client.post("/login/", {"username": "curator", "password": "pw-curator-123"})
    assert good.status_code == 302 and good["Location"] == "/"


def test_gallery_empty_state_invites_an_upload(client, curator):
    client.force_login(curator)
    html = client.get("/").content.decode()
    assert "Your library is empty" in html and 'href="/upload/"' in html


def test_gallery_filters_and_pages_by_id(client, curator, monkeypatch, django_assert_max_num_queries):
    from apps.media import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    items = [make_item(curator, seed=i, artist="Ann" if i % 2 else "") for i in range(5)]
    client.force_login(curator)
    with django_assert_max_num_queries(6):
        first = client.get("/")
    html = first.content.decode()
    assert html.count('class="tile"') == 2
    assert f"/items/{items[4].pk}/" in html and f"after={items[3].pk}" in html
    second = client.get(f"/?after={items[3].pk}", HTTP_HX_REQUEST="true")
    assert second.status_code == 200 and "<html" not in second.content.decode()  # partial only
    assert f"/items/{items[2].pk}/" in second.content.decode()
    filtered = client.get("/?artist=Ann").content.decode()
    assert filtered.count('class="tile"') == 2 and f"/items/{items[0].pk}/" not in filtered
    none = client.get("/?artist=Nobody").content.decode()
    assert "No items match these filters" in none


def test_gallery_reports_invalid_filter_values(client, curator):
    client.force_login(curator)
    html = client.get("/?width_min=wide").content.decode()
    assert "width_min" in html and "Enter a number" in html


def test_item_page_shows_metadata_tag_sets_and_origins(client, curator):
    item = make_item(curator, tags=["smile", "red_hair"], tag_source="danbooru", artist="Ann")
    client.force_login(curator)
    html = client.get(f"/items/{item.pk}/").content.decode()
    for text in (item.name, item.sha256, "from danbooru", "red_hair", "Ann", "Upload"):
        assert text in html
    assert client.get("/items/999999/").status_code == 404


def test_item_page_links_near_duplicates_and_the_gallery_finds_them(client, curator):
    item = make_item(curator)
    assert item.phash is not None
    client.force_login(curator)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert f"?q=similar:{item.pk},4" in html and "Find similar images" in html
    gallery = client.get("/", {"q": f"similar:{item.pk},4"}).content.decode()
    assert f"/items/{item.pk}/" in gallery


def test_upload_page_without_input_is_422_with_a_message(client, curator):
    client.force_login(curator)
    response = client.post("/upload/", {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Choose files, a zip archive or enter URLs" in response.content.decode()
    assert Job.objects.count() == 0


def test_upload_page_starts_a_job_and_shows_its_progress(client, curator):
    client.force_login(curator)
    response = client.post(
        "/upload/",
        {"files": [SimpleUploadedFile("a.png", mediafiles.image_bytes("png"))]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    job = Job.objects.get()
    html = response.content.decode()
    assert f"/jobs/{job.pk}/status" in html and "<progress" in html and 'hx-trigger="every 1s"' in html
    plain = client.post("/upload/", {"urls": "https://example.com/a.jpg"})
    assert plain.status_code == 303 and plain["Location"].startswith("/jobs/")


def test_upload_page_hostile_zip_is_422_and_nothing_is_queued(client, curator, media_root):
    client.force_login(curator)
    archive = SimpleUploadedFile("x.zip", mediafiles.zip_bytes({"../escape.jpg": b"x"}))
    response = client.post("/upload/", {"archive": archive}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "outside the archive" in response.content.decode()
    assert Job.objects.count() == 0


def test_finished_job_status_stops_polling(client, curator):
    from apps.jobs import services

    job = services.job_start(kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator)
    services.job_finish(job=services.job_claim(job_id=job.pk))
    client.force_login(curator)
    html = client.get(f"/jobs/{job.pk}/status", HTTP_HX_REQUEST="true").content.decode()
    assert "Succeeded" in html and "every 1s" not in html


def test_delete_from_item_page(client, curator, media_store, django_capture_on_commit_callbacks):
    item = make_item(curator)
    client.force_login(curator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/items/{item.pk}/delete")
    assert response.status_code == 303 and not MediaItem.objects.filter(pk=item.pk).exists()
    assert media_store.files() == []


def test_viewer_without_permission_cannot_delete(client, viewer, curator):
    item = make_item(curator)
    client.force_login(viewer)
    assert client.post(f"/items/{item.pk}/delete").status_code == 403
    assert MediaItem.objects.filter(pk=item.pk).exists()
