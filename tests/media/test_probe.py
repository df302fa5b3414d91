"""Probing edge formats: BigTIFF, and 16-bit images scaled (not clipped) for thumbnails and hashes."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from apps.media.models import MediaItem
from apps.media.services import probe
from apps.media.services.probe import sniff
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("head", [b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00"])
def test_bigtiff_signatures_sniff_as_tiff_in_both_byte_orders(head):
    assert sniff(head + bytes(24)) == ("image", "tiff")


def test_bigtiff_is_accepted_and_measured(media_root):
    item = make_item(filename="x", data=mediafiles.bigtiff_bytes(size=(300, 200), seed=4))
    assert (item.kind, item.format, item.width, item.height) == ("image", "tiff", 300, 200)
    assert item.thumbnail_key
    assert (media_root / item.thumbnail_key).stat().st_size > 0


def thumbnail(media_root, item: MediaItem) -> Image.Image:
    with Image.open(media_root / item.thumbnail_key) as image:
        return image.convert("L")


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_16_bit_thumbnail_is_the_picture_scaled_not_a_white_clip(fmt, media_root):
    item = make_item(filename="x", data=mediafiles.deep_grey_bytes(fmt, seed=5))
    assert item.bit_depth == 16
    thumb = thumbnail(media_root, item)
    assert thumb.getextrema() != (255, 255)
    expected = mediafiles.picture((160, 120), 5, "L").resize(thumb.size, Image.Resampling.LANCZOS)
    assert ImageStat.Stat(ImageChops.difference(thumb, expected)).mean[0] < 4


def test_unrelated_16_bit_images_get_distinct_perceptual_hashes():
    hashes = [make_item(filename="x", data=mediafiles.deep_grey_bytes(seed=seed)).phash for seed in (1, 2, 3)]
    assert len(set(hashes)) == 3


def test_16_bit_image_hashes_like_its_8_bit_twin():
    deep = make_item(filename="x", data=mediafiles.deep_grey_bytes(seed=7))
    out = io.BytesIO()
    mediafiles.picture((160, 120), 7, "L").save(out, "PNG")
    shallow = make_item(filename="x", data=out.getvalue())
    assert bin((deep.phash ^ shallow.phash) & (2**64 - 1)).count("1") <= 2


def test_thumbnail_size_is_what_pillow_thumbnail_gives():
    """ffmpeg shrinks frames to this size; it must be the size Pillow's thumbnail picks."""
    rng = random.Random(7)
    sizes = [(1, 1), (256, 256), (257, 1), (1, 9000), (1280, 720), (720, 1280), (300, 299)]
    sizes += [(rng.randint(1, 6000), rng.randint(1, 6000)) for _ in range(3000)]
    for width, height in sizes:
        picture = Image.new("1", (width, height))
        picture.thumbnail((256, 256))
        assert probe.thumbnail_size(width, height, 256) == picture.size, (width, height)
