"""The ingest service: every format, dedup, provenance, and refusals that leave nothing behind."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User

from apps.core.exceptions import DomainError
from apps.media.models import MediaItem, MediaSource
from apps.media.services import Origin, media_ingest, metadata_clean
from apps.tags.models import TagAssignment, TagSet
from tests import mediafiles
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db


def ingest(data: bytes, *, user: User | None = None, name: str = "", filename: str = "x.bin", **meta: object):
    return media_ingest(
        stream=io.BytesIO(data),
        origin=Origin(kind="upload", original_filename=filename),
        metadata=metadata_clean(name=name, **meta),
        added_by=user,
    )


@pytest.mark.parametrize("fmt", mediafiles.IMAGE_FORMATS)
def test_media_ingest_reads_every_image_format(fmt, curator, media_root):
    data = mediafiles.image_bytes(fmt, size=(300, 200), seed=3)
    result = ingest(data, user=curator, filename=f"pic.{fmt}")
    item = result.item
    assert not result.duplicate
    assert (item.kind, item.format, item.width, item.height) == ("image", fmt, 300, 200)
    assert item.size_bytes == len(data)
    assert item.mode in ("RGB", "RGBA", "P", "L")
    assert item.bit_depth == 8
    assert item.phash is not None
    assert item.phash_b4 is not None
    assert item.name == f"pic.{fmt}"
    files = {p.relative_to(media_root).as_posix() for p in stored_files(media_root)}
    assert files == {item.storage_key, item.thumbnail_key}
    assert item.storage_key.startswith(f"originals/{item.sha256[:2]}/{item.sha256[2:4]}/")


@pytest.mark.parametrize("fmt", sorted(mediafiles.VIDEO_RECIPES))
def test_media_ingest_probes_every_video_format(fmt, curator, media_root, video_dir):
    path = mediafiles.video_file(video_dir, fmt, seconds=2)
    item = ingest(path.read_bytes(), user=curator, filename=path.name).item
    assert (item.kind, item.format, item.width, item.height) == ("video", fmt, 320, 240)
    assert 1800 <= item.duration_ms <= 2300
    assert item.fps_milli == 25000
    assert item.codec
    assert item.thumbnail_key
    assert (media_root / item.thumbnail_key).stat().st_size > 0


def test_media_ingest_marks_animated_gif_and_webp(curator):
    gif = ingest(mediafiles.image_bytes("gif", animated=True), user=curator).item
    webp = ingest(mediafiles.image_bytes("webp", animated=True, seed=9), user=curator).item
    assert (gif.animated, gif.frame_count) == (True, 3)
    assert (webp.animated, webp.frame_count) == (True, 3)


def test_media_ingest_reports_alpha(curator):
    item = ingest(mediafiles.image_bytes("png", alpha=True), user=curator).item
    assert item.has_alpha
    assert item.mode == "RGBA"


def test_media_ingest_respects_exif_orientation_for_size_and_thumbnail(curator, media_root):
    from PIL import Image

    item = ingest(mediafiles.image_bytes("jpeg", size=(400, 200), exif_orientation=6), user=curator).item
    assert (item.width, item.height) == (200, 400)
    with Image.open(media_root / item.thumbnail_key) as thumb:
        assert thumb.height > thumb.width


def test_media_ingest_same_bytes_twice_is_one_item_with_two_origins_and_tag_sets(curator):
    data = mediafiles.image_bytes("png", seed=5)
    first = ingest(data, user=curator, tags=["Long Hair", "smile"], tag_source="danbooru")
    second = ingest(data, user=curator, tags=["smile", "outdoors"], tag_source="e621")
    assert second.duplicate
    assert second.item.pk == first.item.pk
    assert MediaItem.objects.count() == 1
    assert MediaSource.objects.filter(media_item=first.item).count() == 2
    sets = TagSet.objects.filter(media_item=first.item, kind=TagSet.Kind.SOURCE).order_by("id")
    assert [s.origin_label for s in sets] == ["danbooru", "e621"]
    names = list(
        TagAssignment.objects.filter(tagset=sets[0]).order_by("position").values_list("tag__name", flat=True)
    )
    assert names == ["long_hair", "smile"]
    assert set(TagAssignment.objects.filter(tagset=sets[1]).values_list("added_via", flat=True)) == {"import"}


def test_media_ingest_tags_without_tag_source_are_refused(curator, media_root):
    with pytest.raises(DomainError) as err:
        ingest(mediafiles.image_bytes(), user=curator, tags=["smile"])
    assert err.value.code == "media.tag_source_required"
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


BAD_INPUTS = {
    "empty": (b"", "media.empty", 400),
    "text named jpg": (b"just some text, not a picture\n" * 10, "media.unsupported_type", 415),
    "garbage named mp4": (bytes(range(256)) * 40, "media.unsupported_type", 415),
    "zip on single upload": (mediafiles.zip_bytes({"a.jpg": b"x"}), "media.archive_not_allowed_here", 415),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_media_ingest_refuses_bad_bytes_and_leaves_nothing(case, curator, media_root):
    data, code, status = BAD_INPUTS[case]
    with pytest.raises(DomainError) as err:
        ingest(data, user=curator)
    assert (err.value.code, err.value.status_code) == (code, status)
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_media_ingest_refuses_truncated_images(fmt, curator, media_root):
    data = mediafiles.image_bytes(fmt, size=(640, 480), seed=2)
    with pytest.raises(DomainError) as err:
        ingest(data[: len(data) // 2], user=curator)
    assert err.value.code == "media.corrupt"
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_media_ingest_refuses_decompression_bomb(curator, media_root, settings):
    settings.BAGGINTAG_MAX_IMAGE_PIXELS = 1_000_000
    from apps.media.services.probe import configure_pillow

    configure_pillow()
    try:
        # A 5000×5000 PNG of one colour is a few KB on disk but 25 MP decoded.
        from PIL import Image

        out = io.BytesIO()
        Image.new("L", (5000, 5000)).save(out, "PNG")
        with pytest.raises(DomainError) as err:
            ingest(out.getvalue(), user=curator)
    finally:
        settings.BAGGINTAG_MAX_IMAGE_PIXELS = 100_000_000
        configure_pillow()
    assert err.value.code == "media.decompression_bomb"
    assert err.value.status_code == 413
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_media_ingest_refuses_files_over_the_size_limit(curator, media_root, settings):
    settings.BAGGINTAG_MAX_UPLOAD_BYTES = 10_000
    with pytest.raises(DomainError) as err:
        ingest(mediafiles.image_bytes("bmp", size=(200, 200)), user=curator)
    assert (err.value.code, err.value.status_code) == ("media.too_large", 413)
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


def test_media_ingest_refuses_corrupt_video(curator, media_root, video_dir):
    data = mediafiles.video_file(video_dir, "mp4").read_bytes()
    broken = data[:64] + bytes(len(data) - 64)  # keeps the ftyp header, zeroes the rest
    with pytest.raises(DomainError) as err:
        ingest(broken, user=curator)
    assert err.value.code == "media.corrupt"
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "bad\x00name.jpg"),
        ("name", "tab\tname"),
        ("name", "x" * 10_000),
        ("artist", "a\x1b[31m"),
        ("name", "evil\u202egpj.exe"),
    ],
)
def test_metadata_clean_refuses_control_characters_and_huge_values(field, value):
    with pytest.raises(DomainError) as err:
        metadata_clean(**{field: value})
    assert err.value.details["field"] == field


def test_metadata_clean_keeps_odd_but_valid_unicode():
    meta = metadata_clean(name="  Zoë 👩‍🎨 画像.png ", artist="名前")
    assert meta.name == "Zoë 👩‍🎨 画像.png"
    assert meta.artist == "名前"
