"""Transforms: recipes validated, outputs exact in size/mode/format, lineage and idempotency."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from apps.core.exceptions import DomainError
from apps.media.models import MediaItem
from apps.media.services.recipes import recipe_clean
from apps.media.services.transforms import media_item_transform
from apps.tags.models import TagAssignment, TagSet
from tests import mediafiles
from tests.media.factories import make_item
from tests.storage import MediaStore

pytestmark = pytest.mark.django_db


def opened(store: MediaStore, item: MediaItem) -> Image.Image:
    return store.image(item.storage_key)


@pytest.fixture
def photo(media_store) -> MediaItem:
    return make_item(["cat", "sky"], tag_source="src", fmt="jpeg", size=(1600, 1200), seed=11, filename="")


@pytest.mark.parametrize(
    ("ops", "size"),
    [
        ([{"op": "crop", "box": [100, 50, 400, 300]}], (400, 300)),
        ([{"op": "crop", "fbox": [0.5, 0.5, 0.5, 0.5]}], (800, 600)),
        ([{"op": "crop", "aspect": "1:1"}], (1200, 1200)),
        ([{"op": "crop", "aspect": "16:9"}], (1600, 900)),
        ([{"op": "scale", "long": 1024}], (1024, 768)),
        ([{"op": "scale", "short": 600}], (800, 600)),
        ([{"op": "scale", "megapixels": 0.48}], (800, 600)),
        ([{"op": "scale", "mode": "fill", "width": 512, "height": 512}], (512, 512)),
        ([{"op": "scale", "mode": "exact", "width": 300, "height": 500}], (300, 500)),
        ([{"op": "scale", "bucket": "sdxl"}], (1152, 896)),
        ([{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 512}], (512, 512)),
        ([{"op": "rotate", "degrees": 90}, {"op": "scale", "long": 400}], (300, 400)),
        ([{"op": "scale", "long": 4000}], (1600, 1200)),  # fit never upscales unless asked
        ([{"op": "scale", "long": 3200, "upscale": True}], (3200, 2400)),
    ],
)
def test_transform_output_has_the_requested_size(photo, media_store, ops, size):
    result = media_item_transform(item=photo, recipe={"ops": ops, "output": {"format": "png"}})
    item = result.item
    assert (item.width, item.height) == size
    with opened(media_store, item) as image:
        assert image.size == size
        assert image.format == "PNG"


@pytest.mark.parametrize(
    ("output", "fmt", "mode"),
    [
        ({"format": "jpg", "quality": 80}, "JPEG", "RGB"),
        ({"format": "webp"}, "WEBP", "RGB"),
        ({"format": "png", "mode": "L"}, "PNG", "L"),
    ],
)
def test_transform_converts_format_and_mode(photo, media_store, output, fmt, mode):
    item = media_item_transform(item=photo, recipe={"ops": [], "output": output}).item
    with opened(media_store, item) as image:
        assert (image.format, image.mode) == (fmt, mode)
    assert item.format == {"JPEG": "jpeg", "WEBP": "webp", "PNG": "png"}[fmt]


def test_transform_alpha_kept_flattened_or_refused(media_store):
    rgba = make_item(data=mediafiles.image_bytes("png", size=(64, 64), alpha=True))
    kept = media_item_transform(item=rgba, recipe={"ops": [], "output": {"format": "webp"}}).item
    assert kept.has_alpha
    assert kept.mode == "RGBA"
    flat = media_item_transform(
        item=rgba,
        recipe={"ops": [], "output": {"format": "png", "alpha": "flatten", "background": "#ff0000"}},
    ).item
    with opened(media_store, flat) as image:
        assert image.mode == "RGB"
    with pytest.raises(DomainError) as err:
        media_item_transform(item=rgba, recipe={"ops": [], "output": {"alpha": "refuse"}})
    assert err.value.code == "media.alpha_refused"


def test_transform_applies_exif_orientation_first(media_store):
    rotated = make_item(data=mediafiles.image_bytes("jpeg", size=(400, 200), exif_orientation=6))
    item = media_item_transform(item=rotated, recipe={"ops": [], "output": {"format": "png"}}).item
    assert (item.width, item.height) == (200, 400)


def test_transform_picks_a_frame_of_an_animated_gif(media_store):
    gif = make_item(data=mediafiles.image_bytes("gif", animated=True, seed=3))
    first = media_item_transform(item=gif, recipe={"ops": [], "output": {"format": "png"}}).item
    third = media_item_transform(item=gif, recipe={"ops": [], "output": {"format": "png"}, "frame": 2}).item
    assert first.sha256 != third.sha256
    with pytest.raises(DomainError) as err:
        media_item_transform(item=gif, recipe={"ops": [], "frame": 9})
    assert err.value.code == "media.frame_out_of_range"


def test_transform_records_lineage_is_idempotent_and_inherits_tags(photo):
    recipe = {"ops": [{"op": "crop", "aspect": "1:1"}], "output": {"format": "png"}}
    first = media_item_transform(item=photo, recipe=recipe)
    again = media_item_transform(item=photo, recipe=recipe)
    assert not first.duplicate
    assert again.duplicate
    assert again.item.pk == first.item.pk
    child = first.item
    assert child.parent_id == photo.pk
    assert child.recipe == recipe_clean(recipe)
    derived = TagSet.objects.get(media_item=child, kind=TagSet.Kind.DERIVED)
    assert derived.slot == f"parent:{photo.pk}"
    assert set(TagAssignment.objects.filter(tagset=derived).values_list("tag__name", flat=True)) == {
        "cat",
        "sky",
    }
    assert set(TagAssignment.objects.filter(tagset=derived).values_list("added_via", flat=True)) == {
        "inherit"
    }
    photo.refresh_from_db()
    assert photo.parent_id is None
    assert photo.recipe is None  # the parent is never modified


@pytest.mark.parametrize(
    ("recipe", "code"),
    [
        ({"ops": [{"op": "crop", "box": [1500, 0, 400, 300]}]}, "media.box_outside"),
        ({"ops": [{"op": "crop", "box": [0, 0, 0, 10]}]}, "media.invalid_recipe"),
        ({"ops": [{"op": "crop", "box": [-5, 0, 10, 10]}]}, "media.invalid_recipe"),
        ({"ops": [{"op": "scale", "long": 9000, "upscale": True}]}, "media.upscale_too_large"),
        (
            {"ops": [{"op": "scale", "mode": "exact", "width": 3000, "height": 2000}]},
            "media.upscale_not_allowed",
        ),
        ({"ops": [], "output": {"format": "gif"}}, "media.unknown_format"),
        ({"ops": [{"op": "blur"}]}, "media.invalid_recipe"),
        ({"ops": [{"op": "rotate", "degrees": 45}]}, "media.invalid_recipe"),
        ("not a recipe", "media.invalid_recipe"),
    ],
)
def test_transform_refuses_bad_recipes_and_leaves_nothing(photo, media_store, recipe, code):
    before = media_store.files()
    with pytest.raises(DomainError) as err:
        media_item_transform(item=photo, recipe=recipe)
    assert err.value.code == code
    assert err.value.message
    assert MediaItem.objects.count() == 1
    assert media_store.files() == before


def test_transform_of_a_video_is_refused(video_dir, media_store):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4"))
    with pytest.raises(DomainError) as err:
        media_item_transform(item=video, recipe={"ops": []})
    assert (err.value.code, err.value.status_code) == ("media.not_an_image", 422)


def test_transform_api_and_bulk_job(api, photo):
    url = f"/api/media/{photo.pk}/transform"
    recipe = {"ops": [{"op": "scale", "long": 256}], "output": {"format": "webp", "quality": 80}}
    created = api.post(url, recipe, format="json")
    assert created.status_code == 201
    assert created.json()["parent"] == photo.pk
    assert (created.json()["width"], created.json()["height"]) == (256, 192)
    again = api.post(url, recipe, format="json")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    bad = api.post(url, {"ops": [{"op": "crop", "box": [0, 0, 5000, 10]}]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "media.box_outside"
    job = api.post("/api/media/transform-bulk", {"ids": [photo.pk], "recipe": recipe}, format="json")
    assert job.status_code == 202
    assert job.json()["job"]["kind"] == "media.transform_bulk"
    missing = api.post(
        "/api/media/transform-bulk", {"ids": [photo.pk, 99999], "recipe": recipe}, format="json"
    )
    assert missing.status_code == 400
    assert missing.json()["code"] == "media.not_found"
    from apps.media.services.transforms import media_transform_bulk_run

    media_transform_bulk_run(job_id=job.json()["job"]["id"])
    detail = api.get(job.json()["job"]["url"]).json()
    assert detail["status"] == "succeeded"
    assert detail["counts"] == {"duplicate": 1}
    children = api.get(f"/api/media/?parent={photo.pk}").json()["results"]
    assert [c["id"] for c in children] == [created.json()["id"]]


@pytest.mark.parametrize("fmt", mediafiles.IMAGE_FORMATS)
def test_transform_reads_every_image_format(fmt, media_store):
    source = make_item(fmt=fmt, size=(320, 240), seed=21)
    item = media_item_transform(
        item=source, recipe={"ops": [{"op": "crop", "aspect": "1:1"}], "output": {"format": "png"}}
    ).item
    assert (item.width, item.height, item.format, item.parent_id) == (240, 240, "png", source.pk)


def test_transform_of_a_16_bit_greyscale_png_gives_8_bit(media_store):
    out = io.BytesIO()
    Image.new("I;16", (64, 32), 40000).save(out, "PNG")
    source = make_item(data=out.getvalue())
    item = media_item_transform(item=source, recipe={"ops": [], "output": {"format": "png"}}).item
    with opened(media_store, item) as image:
        assert image.mode == "L"
        assert 150 <= image.getpixel((0, 0)) <= 160  # 40000 / 256 ≈ 156
    assert item.bit_depth == 8


def test_transform_of_a_captured_frame(video_dir, media_store):
    from apps.media.services import frames

    video = make_item(path=mediafiles.video_file(video_dir, "mp4"))
    job = frames.media_frames_extract_start(video=video, request={"mode": "timestamps", "timestamps": [1.0]})
    frames.media_frames_extract_run(job_id=job.pk)
    frame = MediaItem.objects.get(kind="frame")
    with pytest.raises(DomainError) as err:  # 320×240 → 576×448 needs a 1.87× upscale
        media_item_transform(item=frame, recipe={"ops": [{"op": "scale", "bucket": "sd15"}]})
    assert err.value.code == "media.upscale_not_allowed"
    recipe = {"ops": [{"op": "scale", "bucket": "sd15", "upscale": True}], "output": {"format": "jpg"}}
    item = media_item_transform(item=frame, recipe=recipe).item
    assert (item.width, item.height, item.parent_id, item.format) == (576, 448, frame.pk, "jpeg")


def test_derived_item_is_named_after_its_recipe_and_keeps_artist_and_source():
    scan = make_item(
        size=(800, 600), seed=4, filename="scan.png", artist="Ann", source="https://www.pixiv.net/artworks/1"
    )
    recipe = {
        "ops": [{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 512}],
        "output": {"format": "webp"},
    }
    child = media_item_transform(item=scan, recipe=recipe).item
    assert child.name == "scan — crop 1:1, 512 px, webp"
    assert (child.artist, child.source, child.site) == ("Ann", scan.source, "www.pixiv.net")


def test_frames_are_named_after_their_time_and_keep_the_videos_artist_and_source(video_dir):
    from apps.media.services import frames

    video = make_item(
        path=mediafiles.video_file(video_dir, "mp4", seconds=2),
        filename="clip.mp4",
        artist="Bo",
        source="https://example.com/v",
    )
    job = frames.media_frames_extract_start(
        video=video, request={"timestamps": [1.0], "box": [0, 0, 160, 120]}
    )
    frames.media_frames_extract_run(job_id=job.pk)
    frame = MediaItem.objects.get(video=video)
    assert frame.name == "clip — frame 25 at 1.000 s, box 160×120 at 0,0"
    assert (frame.artist, frame.source) == ("Bo", "https://example.com/v")


@pytest.mark.parametrize("threads", [1, 2])
def test_bulk_transform_job_renders_on_threads_and_records_in_input_order(
    threads, settings, media_store, curator
):
    """The pixel work runs on a pool; outcomes are recorded in input order, a bad input fails
    alone, and every result is the bytes the sequential pipeline makes."""
    from apps.jobs.models import JobItem
    from apps.media.services.transforms import (
        _encode,
        media_transform_bulk_run,
        media_transform_bulk_start,
        transform_image,
    )

    settings.BAGGINTAG_INGEST_THREADS = threads
    items = [make_item(fmt="jpeg", size=(640, 480), seed=70 + k) for k in range(5)]
    media_store.write(items[1].storage_key, b"\xff\xd8 not a jpeg at all")
    MediaItem.objects.filter(pk=items[3].pk).update(storage_key="missing/nothing-here.jpg")
    recipe = {
        "ops": [{"op": "crop", "aspect": "1:1"}, {"op": "scale", "long": 200}],
        "output": {"format": "jpeg"},
    }
    job = media_transform_bulk_start(ids=[i.pk for i in items], recipe=recipe, added_by=curator)
    media_transform_bulk_run(job_id=job.pk)
    rows = list(
        JobItem.objects.filter(job=job).order_by("pk").values_list("seq", "status", "error_code", "object_id")
    )
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert [r[1] for r in rows] == ["created", "failed", "created", "failed", "created"]
    assert rows[1][2] == "media.corrupt"
    assert rows[3][2] == "media.file_missing"
    clean = recipe_clean(recipe)
    for seq in (0, 2, 4):
        derived = MediaItem.objects.get(pk=rows[seq][3])
        assert derived.parent_id == items[seq].pk
        with opened(media_store, items[seq]) as source:
            expected = _encode(transform_image(source, clean), clean["output"])
        assert media_store.read(derived.storage_key) == expected
    job.refresh_from_db()
    assert (job.status, job.counts) == ("succeeded", {"created": 3, "failed": 2})
