"""`manage.py media_rehash`: thumbnails and hashes of stored items made again, batched and resumable."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from PIL import Image

from apps.media.models import MediaItem
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db

WHITE_HASH = -1  # what the clipping probe gave: every bit set (a uniform picture)


def as_measured_by_the_old_probe(item: MediaItem, media_root) -> None:
    """Put back what the clipping probe stored: a white thumbnail and the shared hash."""
    path = media_root / item.thumbnail_key
    path.unlink()
    Image.new("RGB", (160, 120), "white").save(path, "WEBP")
    MediaItem.objects.filter(pk=item.pk).update(phash=WHITE_HASH, phash_b0=0x1FFF)


def test_rehash_fixes_16_bit_items_and_leaves_8_bit_ones(media_root):
    deep = [make_item(filename="x", data=mediafiles.deep_grey_bytes(seed=s)) for s in (1, 2, 3)]
    shallow = make_item(filename="x", data=mediafiles.image_bytes("png", seed=1))
    for item in deep:
        as_measured_by_the_old_probe(item, media_root)
    shallow_before = (media_root / shallow.thumbnail_key).stat().st_mtime_ns
    out = io.StringIO()
    call_command("media_rehash", "--batch-size", "2", stdout=out)
    fresh = [MediaItem.objects.get(pk=item.pk) for item in deep]
    assert len({item.phash for item in fresh}) == 3
    assert WHITE_HASH not in {item.phash for item in fresh}
    assert [item.phash for item in fresh] == [item.phash for item in deep]  # as a fresh ingest has it
    with Image.open(media_root / fresh[0].thumbnail_key) as thumb:
        assert thumb.convert("L").getextrema() != (255, 255)
    assert (media_root / shallow.thumbnail_key).stat().st_mtime_ns == shallow_before
    assert "Done: 3 items re-hashed, 0 failed." in out.getvalue()


def test_rehash_resumes_after_the_checkpoint(media_root, tmp_path):
    first, second = (make_item(filename="x", data=mediafiles.deep_grey_bytes(seed=s)) for s in (4, 5))
    for item in (first, second):
        as_measured_by_the_old_probe(item, media_root)
    checkpoint = tmp_path / "rehash.checkpoint"
    checkpoint.write_text(f"{first.pk}\n")  # a run that stopped after the first item
    call_command("media_rehash", "--checkpoint", str(checkpoint), stdout=io.StringIO())
    assert MediaItem.objects.get(pk=first.pk).phash == WHITE_HASH  # not redone
    assert MediaItem.objects.get(pk=second.pk).phash == second.phash
    assert checkpoint.read_text().strip() == str(second.pk)


def test_rehash_all_covers_8_bit_images_too(media_root):
    item = make_item(filename="x", data=mediafiles.image_bytes("jpeg", seed=3))
    MediaItem.objects.filter(pk=item.pk).update(phash=WHITE_HASH)
    call_command("media_rehash", "--all", stdout=io.StringIO())
    assert MediaItem.objects.get(pk=item.pk).phash == item.phash


def test_rehash_animations_makes_old_animated_gif_and_webp_images_videos():
    gif = make_item(filename="x", data=mediafiles.animation_bytes("gif", [100, 300, 100]))
    webp = make_item(filename="x", data=mediafiles.animation_bytes("webp", [200] * 4))
    # As the old probe stored them: images with no timing.
    MediaItem.objects.filter(pk__in=[gif.pk, webp.pk]).update(
        kind="image", duration_ms=None, fps_milli=None, codec=""
    )
    out = io.StringIO()
    call_command("media_rehash", "--animations", stdout=out)
    gif.refresh_from_db()
    webp.refresh_from_db()
    assert (gif.kind, gif.duration_ms, gif.frame_count, gif.codec) == ("video", 500, 3, "gif")
    assert (webp.kind, webp.duration_ms, webp.fps_milli) == ("video", 800, 5000)
    assert "Done: 2 items re-probed, 0 failed." in out.getvalue()
