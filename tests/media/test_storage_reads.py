"""Serving stored files on the local folder and on S3: missing files, and ranges read as ranges."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.files.storage import default_storage

from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_reads(media_store) -> Iterator[list[int]]:
    """Bytes each S3 GetObject call of the storage returned, in order (S3 only)."""
    assert media_store.backend == "s3"
    got: list[int] = []

    def record(parsed: dict, **kwargs: object) -> None:
        got.append(int(parsed.get("ContentLength", 0)))

    events = default_storage.connection.meta.client.meta.events
    events.register("after-call.s3.GetObject", record)
    yield got
    events.unregister("after-call.s3.GetObject", record)


@pytest.mark.parametrize("media_store", ["s3"], indirect=True)
def test_a_range_request_reads_only_that_range_from_s3(client, curator, video_dir, s3_reads):
    """A video player seeks with small ranges; each must not download the whole object first."""
    data = mediafiles.video_file(video_dir, "mp4").read_bytes()
    video = make_item(data=data)
    client.force_login(curator)
    s3_reads.clear()
    part = client.get(f"/items/{video.pk}/stream", HTTP_RANGE="bytes=100-199")
    assert b"".join(part.streaming_content) == data[100:200]
    assert sum(s3_reads) == 100


@pytest.mark.parametrize("media_store", ["s3"], indirect=True)
def test_a_whole_file_is_streamed_from_s3_in_one_read(api, s3_reads):
    data = mediafiles.image_bytes("png", size=(640, 480))
    item = make_item(data=data)
    s3_reads.clear()
    response = api.get(f"/api/media/{item.pk}/file")
    assert response["Content-Length"] == str(len(data))
    assert b"".join(response.streaming_content) == data
    assert s3_reads == [len(data)]


@pytest.mark.parametrize("url", ["/items/{pk}/stream", "/api/media/{pk}/file", "/api/media/{pk}/thumbnail"])
def test_a_file_missing_from_storage_is_a_404_with_its_code(api, client, curator, media_store, url):
    item = make_item(data=mediafiles.image_bytes("jpeg", seed=4))
    default_storage.delete(item.storage_key)
    default_storage.delete(item.thumbnail_key)
    client.force_login(curator)
    response = (api if url.startswith("/api/") else client).get(url.format(pk=item.pk))
    assert response.status_code == 404
    assert b"media.file_missing" in response.content or b"stored file is missing" in response.content


@pytest.mark.parametrize("media_store", ["s3"], indirect=True)
def test_s3_downloads_are_bounded_in_memory(media_store):
    """Transforms, frame capture and bulk staging read stored files through the storage's open(),
    which on S3 buffers the whole object in a SpooledTemporaryFile of this size: 0 (its default)
    keeps any object in memory, whatever its size."""
    assert 0 < default_storage.max_memory_size <= 64 * 1024 * 1024
