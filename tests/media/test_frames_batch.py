"""Frame capture in batches (docs/architecture.md#media-pipelines): the same rows, files and
inherited tags as one frame per transaction, exact resume after a kill between batches, and a
failing batch or frame that leaves no partial rows and no orphan files."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.core.exceptions import DomainError
from apps.jobs.models import Job, JobItem
from apps.media import events
from apps.media.models import MediaItem, MediaSource, VideoFrame
from apps.media.services import batch, frames
from apps.media.services.probe import ffmpeg_exe
from apps.tags.models import TagAssignment, TagSet
from apps.tags.services import tag_set_curated_add
from tests import mediafiles
from tests.media.factories import make_item

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]

# interval 0.25 s over 3 s of 25 fps: 12 frames, at 0, 280, 520, … (the first at or after each step)
REQUEST = {"mode": "interval", "interval": 0.25, "box": [40, 30, 160, 120]}


def capture(video: MediaItem, request: dict) -> Job:
    job = frames.media_frames_extract_start(video=video, request=request)
    frames.media_frames_extract_run(job_id=job.pk)
    return Job.objects.get(pk=job.pk)


def snapshot(video: MediaItem, media_store) -> list[tuple]:
    """Everything a capture leaves, per frame in time order: capture row, item, files, tags."""
    out = []
    for row in VideoFrame.objects.filter(video=video).select_related("media_item").order_by("timestamp_ms"):
        item = row.media_item
        derived = TagSet.objects.get(media_item=item, kind=TagSet.Kind.DERIVED)
        tags = list(
            TagAssignment.objects.filter(tagset=derived, state=TagAssignment.State.CURRENT)
            .order_by("position")
            .values_list("tag__name", "position", "added_via", "origin_set__kind", "entered_tag")
        )
        out.append(
            (
                row.timestamp_ms,
                row.frame_index,
                round(row.pts_time, 6),
                (row.crop_x, row.crop_y, row.crop_w, row.crop_h),
                (item.kind, item.video_id, item.timestamp_ms, item.frame_index),
                (item.box_x, item.box_y, item.box_w, item.box_h, item.width, item.height),
                (item.name, item.sha256, item.phash, item.size_bytes, item.artist, item.source),
                media_store.read(item.storage_key),
                media_store.read(item.thumbnail_key),
                MediaSource.objects.filter(media_item=item, kind="frame").count(),
                (derived.slot, tags, item.tag_count),
            )
        )
    return out


def forget_frames(video: MediaItem) -> None:
    items = MediaItem.objects.filter(video=video, kind="frame")
    keys = [k for pair in items.values_list("storage_key", "thumbnail_key") for k in pair]
    items.delete()
    for key in keys:
        default_storage.delete(key)


def files_owned(video: MediaItem) -> set[str]:
    """The storage keys the library's rows own: the video's and its frames'."""
    keys = set()
    for item in MediaItem.objects.filter(pk=video.pk) | MediaItem.objects.filter(video=video):
        keys |= {item.storage_key, item.thumbnail_key} - {""}
    return keys


def stored(media_store) -> set[str]:
    return set(media_store.files())  # on S3, a file in the local folder (`local:…`) fails too


@pytest.fixture
def video(video_dir):
    item = make_item(
        path=mediafiles.video_file(video_dir, "mp4", seconds=3),
        tags=["anime", "outdoors"],
        tag_source="fansite",
        artist="someone",
    )
    tag_set_curated_add(media_item=item, names=["outdoors", "sky"])
    return item


def test_batched_capture_stores_what_one_frame_at_a_time_stores(video, media_store, monkeypatch):
    sizes: list[int] = []
    real = frames.media_ingest_derived_many

    def spy(*, inputs, **kwargs):
        sizes.append(len(inputs))
        return real(inputs=inputs, **kwargs)

    monkeypatch.setattr(frames, "media_ingest_derived_many", spy)
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 1)
    single = capture(video, REQUEST)
    assert single.counts == {"created": 12}
    assert sizes == [1] * 12
    one_at_a_time = snapshot(video, media_store)
    forget_frames(video)
    assert not VideoFrame.objects.filter(video=video).exists()

    sizes.clear()
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 5)
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 60.0)  # batches fill: 5 + 5 + 2
    batched = capture(video, REQUEST)
    assert sizes == [5, 5, 2]
    assert batched.counts == {"created": 12}
    assert (batched.progress_done, batched.progress_total) == (12, 12)
    assert snapshot(video, media_store) == one_at_a_time
    # The curated set (seeded from the source set, then "sky") is what frames inherit.
    assert [(t[0], t[3]) for t in one_at_a_time[0][-1][1]] == [
        ("anime", TagSet.Kind.CURATED),
        ("outdoors", TagSet.Kind.CURATED),
        ("sky", TagSet.Kind.CURATED),
    ]
    assert stored(media_store) == files_owned(video)
    assert sorted(JobItem.objects.filter(job=batched).values_list("seq", flat=True)) == list(range(12))


def test_a_slow_decode_does_not_hold_frames_back(video, monkeypatch):
    """A frame waits at most FLUSH_SECONDS for others: with a tiny budget every frame is stored
    as soon as it is ready, even though a batch could hold them all."""
    sizes: list[int] = []
    real = frames.media_ingest_derived_many
    monkeypatch.setattr(
        frames,
        "media_ingest_derived_many",
        lambda *, inputs, **kw: sizes.append(len(inputs)) or real(inputs=inputs, **kw),
    )
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 0.0)
    job = capture(video, REQUEST)
    assert job.counts == {"created": 12}
    assert sum(sizes) == 12
    assert max(sizes) < 12


def test_recapture_and_same_pictures_in_one_batch_are_duplicates(video_dir, media_store, monkeypatch):
    """A still video: every frame has the same bytes, so a batch holds one new item and
    duplicates of it (one item, one VideoFrame per time), and a second capture finds them all."""
    path = video_dir / "still.mp4"
    still = "color=c=red:s=64x48:r=25:d=2"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", still, "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    video = make_item(path=path)
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 60.0)
    first = capture(video, {"mode": "interval", "interval": 0.5})
    assert first.counts == {"created": 1, "duplicate": 3}
    assert MediaItem.objects.filter(kind="frame").count() == 1
    assert VideoFrame.objects.filter(video=video).count() == 4
    assert MediaSource.objects.filter(kind="frame").count() == 4  # each arrival recorded
    again = capture(video, {"mode": "interval", "interval": 0.5})
    assert again.counts == {"duplicate": 4}
    assert VideoFrame.objects.filter(video=video).count() == 4
    assert stored(media_store) == files_owned(video)


class Killed(BaseException):
    """The worker dying mid-batch (not an Exception: nothing may catch it)."""


def test_a_kill_between_batches_resumes_without_duplicates(video, media_store, monkeypatch):
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 4)
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 60.0)
    real = events.send_items_derived
    calls = []

    def dies_in_the_second_batch(**kwargs):
        calls.append(len(kwargs["pairs"]))
        if len(calls) == 2:
            raise Killed  # inside the batch's transaction, after its files were written
        real(**kwargs)

    monkeypatch.setattr(events, "send_items_derived", dies_in_the_second_batch)
    job = frames.media_frames_extract_start(video=video, request=REQUEST)
    with pytest.raises(Killed):
        frames.media_frames_extract_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    # The first batch committed as a unit with its records; the second left nothing.
    assert sorted(JobItem.objects.filter(job=job).values_list("seq", flat=True)) == [0, 1, 2, 3]
    assert job.counts == {"created": 4}
    assert VideoFrame.objects.filter(video=video).count() == 4
    assert stored(media_store) == files_owned(video)

    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=1))  # stale
    monkeypatch.setattr(events, "send_items_derived", real)
    frames.media_frames_extract_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 12}
    assert sorted(JobItem.objects.filter(job=job).values_list("seq", flat=True)) == list(range(12))
    stamps = list(VideoFrame.objects.filter(video=video).values_list("timestamp_ms", flat=True))
    assert len(stamps) == len(set(stamps)) == 12
    assert MediaItem.objects.filter(video=video, kind="frame").count() == 12
    assert MediaSource.objects.filter(kind="frame").count() == 12
    assert TagSet.objects.filter(media_item__video=video, kind=TagSet.Kind.DERIVED).count() == 12
    assert stored(media_store) == files_owned(video)


def test_a_failing_batch_is_stored_again_frame_by_frame(video, media_store, monkeypatch):
    """One frame whose rows cannot be written fails the batch: the batch leaves no rows and no
    files, then its frames are stored one at a time and only that frame fails, recorded."""
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 6)
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 60.0)
    real = frames._captures_insert
    seen_batches: list[list[int]] = []

    def refuses_520(video, job, prepared, items):
        stamps = [f.timestamp_ms for f in prepared]
        seen_batches.append(stamps)
        if 520 in stamps:
            assert MediaItem.objects.filter(timestamp_ms__in=stamps, video=video).count() == len(stamps)
            raise RuntimeError("disk on fire")
        real(video, job, prepared, items)

    monkeypatch.setattr(frames, "_captures_insert", refuses_520)
    job = capture(video, REQUEST)
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 11, "failed": 1}
    assert len(seen_batches[0]) == 6  # the batch, then its frames one by one
    assert 520 in seen_batches[0]
    assert [len(b) for b in seen_batches[1:7]] == [1] * 6
    failed = JobItem.objects.get(job=job, status=JobItem.Status.FAILED)
    assert (failed.seq, failed.input, failed.error_code) == (2, "t=0.52s", "media.internal_error")
    assert not MediaItem.objects.filter(video=video, timestamp_ms=520).exists()
    assert VideoFrame.objects.filter(video=video).count() == 11
    assert MediaSource.objects.filter(kind="frame").count() == 11
    assert stored(media_store) == files_owned(video)  # the failed frame's files are gone


def test_a_domain_error_of_a_frame_is_its_own_outcome(video, media_store, monkeypatch):
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 1)

    def refuses(**kwargs):
        raise DomainError("no room for frames", code="media.storage_full")

    monkeypatch.setattr(batch.storage, "store_bytes", lambda key, data: refuses())
    job = capture(video, {"mode": "timestamps", "timestamps": [0.5, 1.0]})
    assert job.status == Job.Status.FAILED  # every input failed
    assert list(JobItem.objects.filter(job=job).values_list("status", "error_code")) == [
        ("failed", "media.storage_full"),
        ("failed", "media.storage_full"),
    ]
    assert not MediaItem.objects.filter(kind="frame").exists()
    assert stored(media_store) == files_owned(video)


def test_cancel_stops_the_job_between_batches(video, monkeypatch):
    monkeypatch.setattr(frames, "FLUSH_FRAMES", 2)
    monkeypatch.setattr(frames, "FLUSH_SECONDS", 60.0)
    job = frames.media_frames_extract_start(video=video, request=REQUEST)
    real = frames._store_batch

    def cancel_during_first(job_, video_, batch_, user):
        Job.objects.filter(pk=job_.pk).update(cancel_requested=True)  # the batch's record reads it
        real(job_, video_, batch_, user)

    monkeypatch.setattr(frames, "_store_batch", cancel_during_first)
    frames.media_frames_extract_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.counts == {"created": 2}
    assert VideoFrame.objects.filter(video=video).count() == 2
