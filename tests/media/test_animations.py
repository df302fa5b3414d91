"""Animated GIF and WebP are videos: probed by their frame delays, frames captured exactly by
every mode, and still pictures for thumbnails and transforms (their first frame)."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from apps.jobs.models import Job
from apps.media.models import MediaItem, VideoFrame
from apps.media.services import frames
from apps.media.services.transforms import media_item_transform
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = pytest.mark.django_db

FORMATS = ["gif", "webp"]
EVEN = [100] * 10  # 1 s at 10 fps
UNEVEN = [100, 300, 50, 200, 100]  # starts at 0, 100, 400, 450, 650 ms; 750 ms in all


def capture(video: MediaItem, request: dict) -> Job:
    job = frames.media_frames_extract_start(video=video, request=request)
    frames.media_frames_extract_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def captured(video: MediaItem) -> list[VideoFrame]:
    return list(VideoFrame.objects.filter(video=video).select_related("media_item").order_by("timestamp_ms"))


def differs(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def stored(media_root, item: MediaItem) -> Image.Image:
    with Image.open(media_root / item.storage_key) as image:
        return image.convert("RGB")


@pytest.mark.parametrize("fmt", FORMATS)
def test_animation_is_probed_as_a_video(fmt):
    item = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, EVEN))
    assert (item.kind, item.format, item.animated) == ("video", fmt, True)
    assert (item.duration_ms, item.fps_milli, item.frame_count) == (1000, 10_000, 10)
    assert item.codec == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_uneven_delays_give_the_true_duration_and_the_average_rate(fmt):
    item = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, UNEVEN))
    assert (item.duration_ms, item.frame_count) == (750, 5)
    assert item.fps_milli == round(5 / 0.75 * 1000)


def test_a_single_frame_gif_stays_an_image():
    item = make_item(filename="anim", data=mediafiles.image_bytes("gif"))
    assert (item.kind, item.duration_ms) == ("image", None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_timestamps_capture_the_exact_frame_with_video_provenance(fmt, media_root):
    video = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, UNEVEN))
    job = capture(video, {"mode": "timestamps", "timestamps": [0, 0.1, 0.2, 0.45]})
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    rows = captured(video)
    # The first frame starting at or after each time, as for any video.
    assert [(r.timestamp_ms, r.frame_index) for r in rows] == [(0, 0), (100, 1), (400, 2), (450, 3)]
    expected = mediafiles.animation_frames(5)
    for row in rows:
        frame = row.media_item
        assert (frame.kind, frame.video_id, frame.timestamp_ms, frame.frame_index) == (
            "frame",
            video.pk,
            row.timestamp_ms,
            row.frame_index,
        )
        assert differs(stored(media_root, frame), expected[row.frame_index]) < 1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_interval_takes_the_first_frame_at_or_after_each_step(fmt):
    video = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, UNEVEN))
    job = capture(video, {"mode": "interval", "interval": 0.25})
    assert [r.frame_index for r in captured(video)] == [0, 2, 4]  # 0, ≥250 → 400, ≥500 → 650
    assert (job.progress_done, job.progress_total) == (3, 3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_count_spreads_frames_evenly(fmt):
    video = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, EVEN))
    capture(video, {"mode": "count", "count": 4})
    assert [r.timestamp_ms for r in captured(video)] == [0, 300, 500, 800]  # steps of 250 ms


@pytest.mark.parametrize("fmt", FORMATS)
def test_scene_changes_and_keyframes(fmt):
    delays = [100] * 6
    data = io.BytesIO()
    pictures = mediafiles.animation_frames(2)
    sequence = [pictures[0]] * 3 + [pictures[1]] * 3  # one cut, at the fourth frame
    kwargs = {"lossless": True} if fmt == "webp" else {}
    sequence[0].save(data, fmt.upper(), save_all=True, append_images=sequence[1:], duration=delays, **kwargs)
    video = make_item(filename="anim", data=data.getvalue())
    scene = capture(video, {"mode": "scene", "threshold": 0.1})
    assert scene.status == Job.Status.SUCCEEDED, scene.error_message
    assert [r.timestamp_ms for r in captured(video)] == [0, 300]
    assert (scene.progress_done, scene.progress_total) == (2, 2)
    keyframes = capture(video, {"mode": "keyframes"})
    assert sum(keyframes.counts.values()) == video.frame_count


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_crops_the_frame_and_is_recorded(fmt, media_root):
    video = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, EVEN))
    capture(video, {"mode": "timestamps", "timestamps": [0.3], "box": [10, 5, 40, 30]})
    (row,) = captured(video)
    assert (row.frame_index, row.crop_x, row.crop_y, row.crop_w, row.crop_h) == (3, 10, 5, 40, 30)
    expected = mediafiles.animation_frames(10)[3].crop((10, 5, 50, 35))
    assert differs(stored(media_root, row.media_item), expected) < 1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_first_frame_is_the_thumbnail_and_what_a_transform_reads(fmt, media_root):
    video = make_item(filename="anim", data=mediafiles.animation_bytes(fmt, EVEN))
    first = mediafiles.animation_frames(10)[0]
    with Image.open(media_root / video.thumbnail_key) as thumb:
        assert differs(thumb, first.resize(thumb.size)) < 3.0
    result = media_item_transform(item=video, recipe={"ops": [], "output": {"format": "png"}}).item
    assert differs(stored(media_root, result), first) < 1.0
    later = media_item_transform(item=video, recipe={"ops": [], "output": {"format": "png"}, "frame": 4}).item
    assert differs(stored(media_root, later), mediafiles.animation_frames(10)[4]) < 1.0


def test_frames_api_accepts_an_animated_gif(api):
    video = make_item(filename="anim", data=mediafiles.animation_bytes("gif", EVEN))
    response = api.post(f"/api/media/{video.pk}/frames", {"mode": "count", "count": 2}, format="json")
    assert response.status_code == 202, response.json()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_animation_with_too_many_pixels_to_decode_is_refused_and_nothing_is_kept(
    fmt, settings, media_root
):
    from apps.core.exceptions import DomainError
    from tests.conftest import stored_files

    settings.BAGGINTAG_MAX_ANIMATION_PIXELS = 10 * 96 * 64 - 1  # one pixel short of ten 96×64 frames
    with pytest.raises(DomainError) as refused:
        make_item(data=mediafiles.animation_bytes(fmt, EVEN), fmt=fmt)
    assert "BAGGINTAG_MAX_ANIMATION_PIXELS" in refused.value.message
    assert MediaItem.objects.count() == 0
    assert stored_files(media_root) == []
