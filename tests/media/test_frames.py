"""Frame capture: every format against ffmpeg's own `-ss`, exact timestamps and boxes, modes,
idempotency, inheritance, and failures that leave nothing behind."""

from __future__ import annotations

import io
import subprocess

import pytest
from PIL import Image, ImageChops, ImageStat

from apps.core.exceptions import DomainError
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, VideoFrame
from apps.media.services import frames, probe, storage
from apps.media.services.probe import ffmpeg_exe
from apps.tags.models import TagAssignment, TagSet
from tests import mediafiles
from tests.media.factories import make_item

# Every test here stores videos and frames: each runs on the local folder and on S3.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]
FORMATS = sorted(mediafiles.VIDEO_RECIPES)


def capture(video: MediaItem, request: dict) -> Job:
    job = frames.media_frames_extract_start(video=video, request=request)
    frames.media_frames_extract_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def reference(path, seconds: float, box=None, *, exact: bool = False) -> Image.Image:
    """What `ffmpeg -ss T -i FILE -frames:v 1` produces; with `exact`, the first frame at or
    after T found by decoding from the start (input seeking overshoots on MPEG-PS)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin"]
    filters = ["crop={2}:{3}:{0}:{1}".format(*box)] if box else []
    if exact:
        cmd += ["-i", str(path)]
        # Without -copyts ffmpeg counts t from the container start, as our timestamps do.
        filters.insert(0, f"select=gte(t\\,{seconds - 0.0005:.4f})")
    else:
        cmd += ["-ss", f"{seconds:.3f}", "-i", str(path)]
    cmd += ["-frames:v", "1", *(["-vf", ",".join(filters)] if filters else [])]
    out = subprocess.run(
        [*cmd, "-f", "image2pipe", "-c:v", "png", "-"], capture_output=True, check=True
    ).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_frames_at_timestamps_match_ffmpeg_seek_in_every_format(fmt, video_dir, media_store):
    path = mediafiles.video_file(video_dir, fmt, seconds=3)
    video = make_item(path=path)
    job = capture(video, {"mode": "timestamps", "timestamps": [0.0, 1.0, 2.3]})
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.counts == {"created": 3}
    captures = list(VideoFrame.objects.filter(video=video).order_by("timestamp_ms"))
    assert len(captures) == 3
    for capture_row, asked in zip(captures, [0.0, 1.0, 2.3], strict=True):
        # The first frame at or after the asked time (25 fps: within one frame, 40 ms).
        assert asked * 1000 <= capture_row.timestamp_ms < asked * 1000 + 80
        frame = capture_row.media_item
        assert (frame.kind, frame.video_id, frame.timestamp_ms) == (
            "frame",
            video.pk,
            capture_row.timestamp_ms,
        )
        assert (frame.box_x, frame.box_y, frame.box_w, frame.box_h) == (0, 0, 320, 240)
        assert frame.frame_index == round(capture_row.timestamp_ms / 40)
        with media_store.image(frame.storage_key) as mine:
            picture = mine.convert("RGB")
        assert mean_abs_diff(picture, reference(path, capture_row.timestamp_ms / 1000, exact=True)) < 1.0
        if fmt != "vob":  # ffmpeg's own input seek is exact here, so it must agree too
            assert mean_abs_diff(picture, reference(path, capture_row.timestamp_ms / 1000)) < 1.0


def test_vob_timestamps_are_relative_to_the_stream_start_and_exact_despite_seek_overshoot(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "vob", seconds=3))
    assert video.start_ms > 400  # MPEG-PS starts at about 0.5 s in the container
    capture(video, {"mode": "timestamps", "timestamps": [0.0, 2.3]})
    first, later = VideoFrame.objects.filter(video=video).order_by("timestamp_ms")
    assert first.timestamp_ms == 0
    # ffmpeg's input seek lands ~0.1 s late on this clip; the capture must not.
    assert 2300 <= later.timestamp_ms < 2340
    assert later.timestamp_ms == round(later.pts_time * 1000)


def test_box_is_applied_and_recorded_exactly(video_dir, media_store):
    path = mediafiles.video_file(video_dir, "mp4", seconds=3)
    video = make_item(path=path)
    capture(video, {"mode": "timestamps", "timestamps": [1.0], "box": [40, 30, 160, 120]})
    row = VideoFrame.objects.get(video=video)
    assert (row.crop_x, row.crop_y, row.crop_w, row.crop_h) == (40, 30, 160, 120)
    frame = row.media_item
    assert (frame.width, frame.height, frame.box_x, frame.box_w) == (160, 120, 40, 160)
    with media_store.image(frame.storage_key) as mine:
        assert mean_abs_diff(mine.convert("RGB"), reference(path, 1.0, (40, 30, 160, 120))) < 1.0


def test_interval_mode_takes_the_first_frame_at_or_after_each_step(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "webm", seconds=3))
    capture(video, {"mode": "interval", "interval": 0.5})
    stamps = sorted(VideoFrame.objects.filter(video=video).values_list("timestamp_ms", flat=True))
    assert stamps == [0, 520, 1000, 1520, 2000, 2520]  # 25 fps: frames sit at multiples of 40 ms


def test_progress_counts_frames_and_the_position_is_shown_apart(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "webm", seconds=3))
    job = capture(video, {"mode": "interval", "interval": 0.5})
    # Six frames captured: progress says 6 of 6, not 3000 of 3000 milliseconds.
    assert (job.progress_done, job.progress_total) == (6, 6)
    assert job.result["position"] == "3.000 s of 3.000 s"


def test_progress_of_a_scene_capture_is_its_frame_count_when_done(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    job = frames.media_frames_extract_start(video=video, request={"mode": "scene", "threshold": 0.9})
    assert job.progress_total == 0  # unknown until the video has been read
    frames.media_frames_extract_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.progress_done == job.progress_total == sum(job.counts.values())


def test_count_mode_spreads_frames_evenly(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mkv", seconds=3))
    capture(video, {"mode": "count", "count": 3})
    assert VideoFrame.objects.filter(video=video).count() == 3


def test_keyframes_and_scene_modes(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    keyframes = capture(video, {"mode": "keyframes"})
    assert keyframes.status == Job.Status.SUCCEEDED
    assert keyframes.counts.get("created", 0) >= 1
    assert VideoFrame.objects.filter(video=video, timestamp_ms=0).exists()
    scene = capture(video, {"mode": "scene", "threshold": 0.9})
    assert scene.status == Job.Status.SUCCEEDED
    assert sum(scene.counts.values()) >= 1  # the first frame always counts as a scene start


def test_skip_similar_drops_near_identical_consecutive_frames(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    loose = capture(video, {"mode": "interval", "interval": 0.2, "skip_similar": 32})
    assert loose.counts["skipped"] >= 10
    assert loose.counts["created"] == 1
    assert JobItem.objects.filter(job=loose, status="skipped").count() == loose.counts["skipped"]


def test_recapturing_the_same_time_and_box_returns_the_same_frame(video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    first = capture(video, {"mode": "timestamps", "timestamps": [1.0]})
    second = capture(video, {"mode": "timestamps", "timestamps": [1.0]})
    assert first.counts == {"created": 1}
    assert second.counts == {"duplicate": 1}
    assert VideoFrame.objects.filter(video=video).count() == 1
    assert MediaItem.objects.filter(kind="frame").count() == 1


def test_frames_inherit_the_videos_tags(video_dir):
    video = make_item(
        path=mediafiles.video_file(video_dir, "mp4", seconds=3),
        tags=["anime", "outdoors"],
        tag_source="fansite",
    )
    capture(video, {"mode": "timestamps", "timestamps": [0.5]})
    frame = MediaItem.objects.get(kind="frame")
    derived = TagSet.objects.get(media_item=frame, kind=TagSet.Kind.DERIVED)
    assert derived.slot == f"video:{video.pk}"
    assert set(TagAssignment.objects.filter(tagset=derived).values_list("tag__name", flat=True)) == {
        "anime",
        "outdoors",
    }


def test_rotated_video_reports_display_size_and_frames_are_upright(tmp_path, media_store):
    plain = mediafiles.video_file(tmp_path, "mp4", seconds=2)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-display_rotation",
            "90",
            "-i",
            str(plain),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    video = make_item(path=rotated)
    assert (video.width, video.height, video.rotation) == (240, 320, 270)
    capture(video, {"mode": "timestamps", "timestamps": [0.5]})
    frame = MediaItem.objects.get(kind="frame")
    assert (frame.width, frame.height) == (240, 320)


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"mode": "timestamps", "timestamps": [99.0]}, "media.timestamp_out_of_range"),
        ({"mode": "timestamps", "timestamps": [-1]}, "media.invalid_frames_request"),
        ({"mode": "timestamps", "timestamps": []}, "media.invalid_frames_request"),
        ({"mode": "timestamps", "timestamps": [1], "box": [300, 0, 100, 100]}, "media.box_outside"),
        ({"mode": "timestamps", "timestamps": [1], "box": [0, 0, 0, 100]}, "media.invalid_frames_request"),
        ({"mode": "interval", "interval": 0}, "media.invalid_frames_request"),
        ({"mode": "warp"}, "media.invalid_frames_request"),
    ],
)
def test_bad_capture_requests_are_refused_before_any_job(video_dir, request_body, code):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    with pytest.raises(DomainError) as err:
        frames.media_frames_extract_start(video=video, request=request_body)
    assert err.value.code == code
    assert err.value.status_code == 400
    assert Job.objects.count() == 0


def test_frames_from_an_image_are_refused():
    image = make_item(fmt="jpeg", size=(320, 240))
    with pytest.raises(DomainError) as err:
        frames.media_frames_extract_start(video=image, request={"mode": "keyframes"})
    assert (err.value.code, err.value.status_code) == ("media.not_a_video", 422)


def test_undecodable_video_fails_the_job_and_stores_nothing(video_dir, media_store):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    before = media_store.files()
    media_store.write(video.storage_key, b"\x00" * 4096)  # damaged after upload
    job = capture(video, {"mode": "interval", "interval": 1})
    assert job.status == Job.Status.FAILED
    assert job.error_code == "media.ffmpeg_failed"
    assert "could not decode" in job.error_message
    assert MediaItem.objects.filter(kind="frame").count() == 0
    assert media_store.files() == before


def test_a_decode_that_stalls_is_killed_with_a_clear_error(video_dir, settings, media_store):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    settings.BAGGINTAG_FFMPEG_TIMEOUT = 0.001  # nothing decodes that fast: the watchdog fires
    job = capture(video, {"mode": "interval", "interval": 1})
    assert job.status == Job.Status.FAILED
    assert job.error_code == "media.ffmpeg_timeout"
    assert MediaItem.objects.filter(kind="frame").count() == 0


def test_frames_api_starts_a_job_and_lists_captures(api, video_dir):
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    url = f"/api/media/{video.pk}/frames"
    accepted = api.post(url, {"mode": "timestamps", "timestamps": [1.0, 2.0]}, format="json")
    assert accepted.status_code == 202
    assert accepted.json()["job"]["kind"] == "media.frames"
    frames.media_frames_extract_run(job_id=accepted.json()["job"]["id"])
    listed = api.get(url).json()["results"]
    assert [r["timestamp_ms"] for r in listed] == [1000, 2000]
    assert listed[0]["box"] == {"x": 0, "y": 0, "w": 320, "h": 240}
    assert listed[0]["item"]["kind"] == "frame"
    assert listed[0]["item"]["video"] == video.pk
    late = api.post(url, {"mode": "timestamps", "timestamps": [30]}, format="json")
    assert late.status_code == 400
    assert late.json()["code"] == "media.timestamp_out_of_range"
    frame_id = listed[0]["item"]["id"]
    assert api.get(f"/api/media/{frame_id}/frames").status_code == 422
    assert [r["id"] for r in api.get(f"/api/media/?video={video.pk}").json()["results"]] == sorted(
        [r["item"]["id"] for r in listed], reverse=True
    )


def test_job_page_shows_frames_done_and_the_position_apart(video_dir, client, curator):
    video = make_item(path=mediafiles.video_file(video_dir, "webm", seconds=3))
    job = frames.media_frames_extract_start(
        video=video, request={"mode": "interval", "interval": 0.5}, added_by=curator
    )
    frames.media_frames_extract_run(job_id=job.pk)
    client.force_login(curator)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "6 of 6 done" in page
    assert "<span data-job-position>3.000 s of 3.000 s</span>" in page


def test_frame_thumbnails_come_from_ffmpeg_and_agree_with_the_ingest_path(video_dir, media_store, tmp_path):
    """ffmpeg shrinks each frame to its thumbnail (docs/architecture.md#media-pipelines): the
    same size Pillow's thumbnail would have, nearly the same pixels, and a perceptual hash that
    near-duplicate search still matches with the stored PNG's as an upload would hash it."""
    video = make_item(path=mediafiles.video_file(video_dir, "mp4", seconds=3))
    capture(video, {"mode": "timestamps", "timestamps": [0.5, 1.7]})
    rows = list(VideoFrame.objects.filter(video=video).select_related("media_item"))
    assert len(rows) == 2
    for row in rows:
        frame = row.media_item
        png = tmp_path / f"{frame.pk}.png"
        png.write_bytes(media_store.read(frame.storage_key))
        uploaded = probe.probe_image(png, "png", thumb_size=256)
        with media_store.image(frame.thumbnail_key) as stored:
            mine = stored.convert("RGB")
        theirs = Image.open(io.BytesIO(storage.thumbnail_bytes(uploaded.thumbnail))).convert("RGB")
        assert mine.size == theirs.size == (256, 192)
        # Both WebP q80 (which alone moves ~4 levels); ffmpeg scales in YUV: ~2 levels apart.
        assert mean_abs_diff(mine, theirs) < 3.0
        assert bin((frame.phash & (2**64 - 1)) ^ uploaded.phash).count("1") <= 2
