"""Pages: sign-in required, gallery with filters and keyset paging, item page, upload form, delete."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.jobs.models import Job
from apps.media.models import MediaItem
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/upload/", "/jobs/", "/items/1/"])
def test_pages_redirect_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_page_signs_in_and_rejects_wrong_password(client, curator):
    bad = client.post("/login/", {"username": "curator", "password": "nope"})
    assert bad.status_code == 200
    assert "Wrong user name or password" in bad.content.decode()
    good = client.post("/login/", {"username": "curator", "password": "pw-curator-123"})
    assert good.status_code == 302
    assert good["Location"] == "/"


def test_gallery_empty_state_invites_an_upload(client, curator):
    client.force_login(curator)
    html = client.get("/").content.decode()
    assert "Your library is empty" in html
    assert 'href="/upload/"' in html


def test_gallery_filters_and_pages_by_id(client, curator, monkeypatch, django_assert_max_num_queries):
    from apps.media import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    items = [make_item(seed=i, added_by=curator, artist="Ann" if i % 2 else "") for i in range(5)]
    client.force_login(curator)
    with django_assert_max_num_queries(6):
        first = client.get("/")
    html = first.content.decode()
    assert html.count('class="tile"') == 2
    assert f"/items/{items[4].pk}/" in html
    assert f"after={items[3].pk}" in html
    second = client.get(f"/?after={items[3].pk}", HTTP_HX_REQUEST="true")
    assert second.status_code == 200
    assert "<html" not in second.content.decode()  # partial only
    assert f"/items/{items[2].pk}/" in second.content.decode()
    filtered = client.get("/?artist=Ann").content.decode()
    assert filtered.count('class="tile"') == 2
    assert f"/items/{items[0].pk}/" not in filtered
    none = client.get("/?artist=Nobody").content.decode()
    assert "No items match these filters" in none


def test_gallery_reports_invalid_filter_values(client, curator):
    client.force_login(curator)
    html = client.get("/?width_min=wide").content.decode()
    assert "width_min" in html
    assert "Enter a whole number" in html


def test_item_page_shows_metadata_tag_sets_and_origins(client, curator):
    item = make_item(["smile", "red_hair"], tag_source="danbooru", artist="Ann", added_by=curator)
    client.force_login(curator)
    html = client.get(f"/items/{item.pk}/").content.decode()
    for text in (item.name, item.sha256, "from danbooru", "red_hair", "Ann", "Upload"):
        assert text in html
    assert client.get("/items/999999/").status_code == 404


def test_item_page_links_near_duplicates_and_the_gallery_finds_them(client, curator):
    item = make_item(added_by=curator, size=(320, 240))
    # The same picture re-encoded: a near-duplicate.
    twin = make_item(added_by=curator, size=(320, 240), fmt="jpeg")
    assert item.phash is not None
    client.force_login(curator)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert f"?q=similar:{item.pk},4" in html
    assert "Find 1 similar image<" in html
    gallery = client.get("/", {"q": f"similar:{item.pk},4"}).content.decode()
    assert f"/items/{twin.pk}/" in gallery


def test_item_page_offers_find_similar_only_when_there_is_a_near_duplicate(client, curator):
    item = make_item(added_by=curator)
    client.force_login(curator)
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert "data-similar" not in html


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
    assert f"/jobs/{job.pk}/status" in html
    assert "<progress" in html
    assert 'hx-trigger="every 1s"' in html
    plain = client.post("/upload/", {"urls": "https://example.com/a.jpg"})
    assert plain.status_code == 303
    assert plain["Location"].startswith("/jobs/")


def test_upload_page_hostile_zip_is_422_and_nothing_is_queued(client, curator, media_root):
    client.force_login(curator)
    archive = SimpleUploadedFile("x.zip", mediafiles.zip_bytes({"../escape.jpg": b"x"}))
    response = client.post("/upload/", {"archive": archive}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "outside the archive" in response.content.decode()
    assert Job.objects.count() == 0


def test_finished_job_status_stops_polling(client, curator):
    from apps.jobs import services

    job = services.job_start(kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator)
    services.job_finish(job=services.job_claim(job_id=job.pk))
    client.force_login(curator)
    html = client.get(f"/jobs/{job.pk}/status", HTTP_HX_REQUEST="true").content.decode()
    assert "Succeeded" in html
    assert "every 1s" not in html


def test_delete_from_item_page(client, curator, media_root, django_capture_on_commit_callbacks):
    item = make_item(fmt="jpeg", added_by=curator)
    client.force_login(curator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/items/{item.pk}/delete")
    assert response.status_code == 303
    assert not MediaItem.objects.filter(pk=item.pk).exists()
    assert not any(media_root.rglob("*.jpg"))


def test_viewer_without_permission_cannot_delete(client, viewer, curator):
    item = make_item(added_by=curator)
    client.force_login(viewer)
    assert client.post(f"/items/{item.pk}/delete").status_code == 403
    assert MediaItem.objects.filter(pk=item.pk).exists()
