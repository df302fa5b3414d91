"""Item pages of formats browsers cannot show (TIFF, HEIC) use a WebP preview; animated GIF and
WebP pages show the animation with the frame-capture and transform tools."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from apps.media.services import media_item_delete
from apps.media.services.previews import preview_key
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, curator):
    client.force_login(curator)
    return client


@pytest.mark.parametrize("fmt", ["tiff", "heic"])
def test_item_page_shows_a_browser_displayable_preview(fmt, signed_in, curator, media_store):
    item = make_item(data=mediafiles.image_bytes(fmt, size=(640, 480), seed=3), added_by=curator)
    page = signed_in.get(f"/items/{item.pk}/").content.decode()
    assert f'src="/items/{item.pk}/preview"' in page
    assert 'data-width="640" data-height="480"' in page  # the crop tool measures the original
    response = signed_in.get(f"/items/{item.pk}/preview")
    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as preview:
        assert preview.format == "WEBP"
        assert preview.size == (640, 480)
    assert preview_key(item.sha256) in media_store.files()


def test_large_tiff_preview_is_bounded_and_keeps_the_aspect(signed_in, curator):
    item = make_item(data=mediafiles.image_bytes("tiff", size=(3000, 1000), seed=1), added_by=curator)
    response = signed_in.get(f"/items/{item.pk}/preview")
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as preview:
        assert preview.size == (2048, 683)


def test_browser_formats_are_shown_as_they_are(signed_in, curator):
    item = make_item(data=mediafiles.image_bytes("png", seed=2), added_by=curator)
    page = signed_in.get(f"/items/{item.pk}/").content.decode()
    assert f'src="/api/media/{item.pk}/file"' in page
    response = signed_in.get(f"/items/{item.pk}/preview")
    assert response["Content-Type"] == "image/png"


def test_deleting_an_item_removes_its_preview(
    signed_in, curator, media_store, django_capture_on_commit_callbacks
):
    item = make_item(data=mediafiles.image_bytes("tiff", seed=6), added_by=curator)
    signed_in.get(f"/items/{item.pk}/preview")
    with django_capture_on_commit_callbacks(execute=True):
        media_item_delete(item=item)
    assert preview_key(item.sha256) not in media_store.files()


def test_animation_page_shows_the_animation_with_capture_and_transform_tools(signed_in, curator):
    item = make_item(data=mediafiles.animation_bytes("gif", [100] * 4), added_by=curator)
    page = signed_in.get(f"/items/{item.pk}/").content.decode()
    assert "data-animation" in page
    assert "<video" not in page
    assert 'id="frames-form"' in page
    assert 'id="transform-form"' in page
    assert 'id="id_transform_x"' in page  # apart from the capture form's id_x


def test_deleting_a_selection_removes_its_previews_too(
    signed_in, curator, media_store, django_capture_on_commit_callbacks
):
    from apps.media.services import media_items_delete

    item = make_item(data=mediafiles.image_bytes("tiff", seed=7), added_by=curator)
    signed_in.get(f"/items/{item.pk}/preview")
    assert preview_key(item.sha256) in media_store.files()
    with django_capture_on_commit_callbacks(execute=True):
        media_items_delete(ids=[item.pk])
    assert preview_key(item.sha256) not in media_store.files()
