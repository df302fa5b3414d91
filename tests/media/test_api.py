"""The media API: upload, duplicate, list and filters, detail, files, tag sets, delete."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.media.models import MediaItem
from apps.tags.models import TagAssignment, TagSet
from tests import mediafiles
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db

ITEM_FIELDS = {
    "id",
    "kind",
    "name",
    "sha256",
    "format",
    "width",
    "height",
    "mode",
    "bit_depth",
    "has_alpha",
    "animated",
    "frame_count",
    "size_bytes",
    "duration",
    "fps",
    "codec",
    "source",
    "artist",
    "parent",
    "created_at",
    "file_url",
    "thumbnail_url",
}


def upload(api, data: bytes, filename: str = "pic.jpg", **fields):
    return api.post(
        "/api/media/upload", {"file": SimpleUploadedFile(filename, data), **fields}, format="multipart"
    )


def test_upload_file_creates_item_with_metadata_and_source_tags(api):
    response = upload(
        api,
        mediafiles.image_bytes("png", size=(64, 48)),
        "cat.png",
        artist="Zoë",
        source="https://example.com/post/1",
        tags=["cat", "Blue Sky"],
        tag_source="example.com",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= ITEM_FIELDS
    assert (body["kind"], body["format"], body["width"], body["height"]) == ("image", "png", 64, 48)
    assert body["duplicate"] is False
    assert body["artist"] == "Zoë"
    assert body["name"] == "cat.png"
    sets = api.get(f"/api/media/{body['id']}/tag-sets").json()
    assert len(sets) == 1
    assert sets[0]["kind"] == "source"
    assert sets[0]["origin_label"] == "example.com"
    assert [t["name"] for t in sets[0]["tags"]] == ["cat", "blue_sky"]
    assert sets[0]["origin"]["kind"] == "upload"


def test_upload_same_content_again_returns_existing_item_and_adds_tag_set(api):
    data = mediafiles.image_bytes("jpeg", seed=4)
    first = upload(api, data, tags="a,b", tag_source="site-one").json()
    again = upload(api, data, "other-name.jpg", tags="c", tag_source="site-two")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["duplicate"] is True
    assert TagSet.objects.filter(media_item_id=first["id"]).count() == 2
    assert MediaItem.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"tags": "a"}, "media.tag_source_required"),
        ({"name": "x" * 10_000}, "media.invalid_metadata"),
        ({"name": "line\nbreak"}, "media.invalid_metadata"),
        ({"tags": "ok,-bad", "tag_source": "s"}, "tags.invalid_name"),
    ],
)
def test_upload_refuses_bad_metadata_and_stores_nothing(api, media_root, fields, code):
    response = upload(api, mediafiles.image_bytes(), **fields)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "media.empty"),
        (b"plain text pretending to be a jpeg", 415, "media.unsupported_type"),
    ],
)
def test_upload_refuses_bad_files(api, media_root, data, status, code):
    response = upload(api, data)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_upload_needs_exactly_one_of_file_or_url(api):
    neither = api.post("/api/media/upload", {}, format="json")
    both = api.post(
        "/api/media/upload",
        {"url": "https://example.com/a.jpg", "file": SimpleUploadedFile("a.jpg", b"x")},
        format="multipart",
    )
    for response in (neither, both):
        assert response.status_code == 400
        assert "exactly one" in response.json()["message"]


def test_upload_url_with_forbidden_scheme_is_refused(api):
    response = api.post("/api/media/upload", {"url": "file:///etc/passwd"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "media.url_refused"


def test_list_pages_with_cursor_and_filters(api):
    for seed in range(5):
        upload(
            api,
            mediafiles.image_bytes("jpeg", size=(100 + seed * 100, 100), seed=seed),
            artist="A" if seed < 2 else "B",
        )
    upload(api, mediafiles.image_bytes("png", seed=99))
    page = api.get("/api/media/?page_size=4").json()
    assert len(page["results"]) == 4
    assert page["next"]
    rest = api.get(page["next"]).json()
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(ids) == 6 == len(set(ids))
    assert ids == sorted(ids, reverse=True)
    assert {r["format"] for r in api.get("/api/media/?format=png").json()["results"]} == {"png"}
    assert len(api.get("/api/media/?artist=A").json()["results"]) == 2
    wide = api.get("/api/media/?width_min=300&kind=image&format=jpeg").json()["results"]
    assert sorted(r["width"] for r in wide) == [300, 400, 500]
    assert api.get("/api/media/search?format=jpeg&width_max=200").json()["results"][0]["width"] == 200


def test_list_rejects_bad_filter_values(api):
    response = api.get("/api/media/?width_min=abc")
    assert response.status_code == 400
    assert "width_min" in response.json()["details"]["fields"]


def test_list_query_count_does_not_grow_with_items(api, django_assert_max_num_queries):
    for seed in range(8):
        upload(api, mediafiles.image_bytes("jpeg", seed=seed))
    with django_assert_max_num_queries(4):
        assert len(api.get("/api/media/").json()["results"]) == 8


def test_file_and_thumbnail_are_served(api):
    data = mediafiles.image_bytes("jpeg", size=(800, 600))
    item = upload(api, data).json()
    original = api.get(item["file_url"])
    assert original.status_code == 200
    assert original["Content-Type"] == "image/jpeg"
    assert b"".join(original.streaming_content) == data
    thumb = api.get(item["thumbnail_url"])
    assert thumb.status_code == 200
    assert thumb["Content-Type"] == "image/webp"
    from PIL import Image

    with Image.open(io.BytesIO(b"".join(thumb.streaming_content))) as image:
        assert max(image.size) == 256


def test_detail_of_missing_item_is_404_with_code(api):
    response = api.get("/api/media/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "media.not_found"
    assert api.get("/api/media/not-a-number").status_code == 404


def test_delete_removes_row_tag_sets_and_files(api, media_root, django_capture_on_commit_callbacks):
    item = upload(api, mediafiles.image_bytes(), tags="x", tag_source="s").json()
    assert len(stored_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/media/{item['id']}")
    assert response.status_code == 204
    assert not MediaItem.objects.filter(pk=item["id"]).exists()
    assert TagSet.objects.count() == 0
    assert TagAssignment.objects.count() == 0
    assert stored_files(media_root) == []


def test_tag_sets_post_adds_source_set_and_conflicts_on_same_source(api):
    item = upload(api, mediafiles.image_bytes()).json()
    url = f"/api/media/{item['id']}/tag-sets"
    created = api.post(url, {"tags": ["Red Hair", "smile"], "tag_source": "my notes"}, format="json")
    assert created.status_code == 201
    assert [t["name"] for t in created.json()["tags"]] == ["red_hair", "smile"]
    again = api.post(url, {"tags": ["x"], "tag_source": "my notes"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "tags.duplicate_set"
    missing = api.post(url, {"tags": ["x"]}, format="json")
    assert missing.status_code == 400
    assert "tag_source" in missing.json()["details"]["fields"]


def test_delete_updates_tag_counts_and_stats(api, django_capture_on_commit_callbacks):
    from apps.tags.models import Tag, TagStat

    item = upload(api, mediafiles.image_bytes(), tags="x", tag_source="s").json()
    assert Tag.objects.get(name="x").media_count == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/media/{item['id']}").status_code == 204
    assert Tag.objects.get(name="x").media_count == 0
    assert TagStat.objects.get(tag__name="x").current_count == 0


def test_a_query_without_a_query_provider_is_a_clear_400(api, monkeypatch):
    """Media answers `q=` only through the provider the search app registers; without one the
    request is refused, never silently answered with the unfiltered list."""
    from apps.media import extensions

    monkeypatch.setattr(extensions, "_provider", [])
    response = api.get("/api/media/?q=cat")
    assert response.status_code == 400
    assert response.json()["code"] == "media.search_unavailable"
