"""Batched, parallel bulk ingest (apps/media/services/batch.py): the same results with one thread
or several, each input's failure reported, nothing left behind when a batch's rows fail."""

from __future__ import annotations

import io
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import IO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core import spool
from apps.core.exceptions import DomainError
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, MediaSource
from apps.media.services import Origin, metadata_clean
from apps.media.services.batch import BatchInput, media_ingest_many
from apps.media.services.bulk import media_upload_bulk_run, media_upload_bulk_start
from apps.tags.models import TagSet
from tests import mediafiles
from tests.media.factories import WorkerKilled, job_items_record_dying

pytestmark = pytest.mark.django_db


def _opener(data: bytes):  # type: ignore[no-untyped-def]
    def open_() -> AbstractContextManager[IO[bytes]]:
        return io.BytesIO(data)

    return open_


def _inputs(*blobs: bytes) -> list[BatchInput]:
    return [
        BatchInput(
            open=_opener(data),
            origin=Origin(kind="upload", original_filename=f"in{i}.bin"),
            metadata=metadata_clean(tags=["batch"], tag_source="test"),
        )
        for i, data in enumerate(blobs)
    ]


def _upload(curator, files: dict[str, bytes], archive: dict[str, bytes]) -> Job:  # type: ignore[no-untyped-def]
    return media_upload_bulk_start(
        files=[SimpleUploadedFile(name, data) for name, data in files.items()],
        archive=SimpleUploadedFile("a.zip", mediafiles.zip_bytes(archive)),
        defaults={"tags": ["bulk"], "tag_source": "batch test"},
        added_by=curator,
    )


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bulk_job_results_are_the_same_with_one_thread_or_several(threads, settings, curator, media_store):
    settings.BAGGINTAG_INGEST_THREADS = threads
    known = mediafiles.image_bytes("png", seed=600)
    media_upload_bulk_run(job_id=_upload(curator, {"known.png": known}, {"k.jpg": known}).pk)
    images = [mediafiles.image_bytes(fmt, seed=610 + i) for i, fmt in enumerate(["jpeg", "png", "webp"] * 4)]
    files = {f"f{i:02d}.img": data for i, data in enumerate(images)}  # 12 files: two or more batches
    files |= {"again.png": known, "twin.jpg": images[0], "empty.jpg": b"", "cut.png": images[1][:90]}
    archive = {
        "z/one.gif": mediafiles.image_bytes("gif", seed=630),
        "z/notes.txt": b"text",
        "z/dup.jpg": images[0],
    }
    job = _upload(curator, files, archive)
    media_upload_bulk_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 13, "duplicate": 3, "failed": 3}
    assert (job.progress_done, job.progress_total) == (19, 19)
    rows = {row.input: row for row in JobItem.objects.filter(job=job)}
    assert [row.seq for row in JobItem.objects.filter(job=job)] == list(range(19))
    assert rows["again.png"].object_id == MediaItem.objects.get(name="known.png").pk
    assert rows["twin.jpg"].status == "duplicate"
    assert rows["twin.jpg"].object_id == rows["f00.img"].object_id
    assert rows["z/dup.jpg"].object_id == rows["f00.img"].object_id
    assert rows["empty.jpg"].error_code == "media.empty"
    assert rows["cut.png"].error_code == "media.corrupt"
    assert rows["z/notes.txt"].error_code == "media.unsupported_type"
    assert MediaItem.objects.count() == 14
    assert MediaSource.objects.filter(import_job=job).count() == 16  # every created or duplicate input
    assert TagSet.objects.filter(origin_label="batch test").count() == 18  # 16 here + 2 earlier
    # Every stored file belongs to an item (no orphans from the failed inputs); staging is the job's.
    stored = {key for key in media_store.files() if not key.split(":")[-1].startswith("staging/")}
    expected = set(MediaItem.objects.values_list("storage_key", flat=True)) | set(
        MediaItem.objects.values_list("thumbnail_key", flat=True)
    )
    assert stored == expected


def test_a_batch_whose_rows_fail_stores_no_files_and_no_rows(curator, media_store):
    def record(outcomes):  # type: ignore[no-untyped-def]
        raise DomainError("refused by the test's recorder", code="tests.refused")

    blobs = [mediafiles.image_bytes("jpeg", seed=650 + i) for i in range(3)]
    with pytest.raises(DomainError):
        media_ingest_many(inputs=_inputs(*blobs), added_by=curator, record=record)
    assert MediaItem.objects.count() == 0
    assert MediaSource.objects.count() == 0
    assert media_store.files() == []
    assert [p.name for p in spool.spool_dir().glob("bt-in-*")] == []


def test_batch_outcomes_report_each_failure_beside_the_results(curator, media_store):
    good = mediafiles.image_bytes("webp", seed=660)
    outcomes = media_ingest_many(inputs=_inputs(good, b"\x00not media", good), added_by=curator)
    assert outcomes[0].result is not None
    assert outcomes[0].result.duplicate is False
    assert isinstance(outcomes[1].error, DomainError)
    assert outcomes[1].error.code == "media.unsupported_type"
    assert outcomes[2].result is not None
    assert outcomes[2].result.item.pk == outcomes[0].result.item.pk
    assert outcomes[2].result.duplicate is True


def test_a_superseded_batch_writes_no_rows(curator, media_store):
    job = job_services.job_start(kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator)
    stale = job_services.job_claim(job_id=job.pk)
    assert stale is not None
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert job_services.job_claim(job_id=job.pk) is not None  # another attempt takes over

    def record(outcomes):  # type: ignore[no-untyped-def]
        job_services.job_items_record(
            job=stale,
            outcomes=[job_services.ItemOutcome(seq=0, input="a", status="created", object_id=1)],
        )

    with pytest.raises(JobSuperseded):
        media_ingest_many(inputs=_inputs(mediafiles.image_bytes("png", seed=670)), record=record)
    assert MediaItem.objects.count() == 0
    assert JobItem.objects.count() == 0


def test_job_items_record_counts_each_input_once(curator):
    job = job_services.job_start(kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator)
    running = job_services.job_claim(job_id=job.pk)
    assert running is not None
    first = [
        job_services.ItemOutcome(seq=0, input="a", status="created", object_id=1),
        job_services.ItemOutcome(
            seq=1, input="b", status="failed", error=DomainError("bad", code="media.corrupt")
        ),
    ]
    job_services.job_items_record(job=running, outcomes=first)
    again = [*first, job_services.ItemOutcome(seq=2, input="c", status="duplicate", object_id=1)]
    job_services.job_items_record(job=running, outcomes=again)
    running.refresh_from_db()
    assert running.counts == {"created": 1, "failed": 1, "duplicate": 1}
    assert running.progress_done == 3
    assert JobItem.objects.get(job=running, seq=1).error_code == "media.corrupt"


def _stored_keys(media_store) -> set[str]:  # type: ignore[no-untyped-def]
    return {key for key in media_store.files() if not key.split(":")[-1].startswith("staging/")}


def _item_keys() -> set[str]:
    return set(MediaItem.objects.values_list("storage_key", flat=True)) | set(
        MediaItem.objects.values_list("thumbnail_key", flat=True)
    )


def _pictures(first_seed: int, n: int) -> list[bytes]:
    return [mediafiles.image_bytes("png", seed=first_seed + i) for i in range(n)]


def test_the_next_batch_waits_for_bytes_the_batch_before_it_is_still_storing(settings, curator, caplog):
    """Batches are pipelined (the next one is probed before this one commits): bytes that the
    batch before is storing are not stored twice, they become duplicates of its items, without
    the one-at-a-time fallback a clash of two new items would cause."""
    settings.BAGGINTAG_INGEST_THREADS = 1  # batches of 8
    first, second = _pictures(700, 8), _pictures(720, 4)
    files = {f"a{i}.png": data for i, data in enumerate(first)}
    files |= {f"b{i}.png": data for i, data in enumerate([*first[:4], *second])}  # batch 2
    files |= {f"c{i}.png": data for i, data in enumerate([*second, first[7]])}  # batch 3
    job = media_upload_bulk_start(
        files=[SimpleUploadedFile(n, d) for n, d in files.items()], added_by=curator
    )
    media_upload_bulk_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 12, "duplicate": 9}
    rows = {row.input: row for row in JobItem.objects.filter(job=job)}
    for i in range(4):
        assert rows[f"b{i}.png"].status == "duplicate"
        assert rows[f"b{i}.png"].object_id == rows[f"a{i}.png"].object_id
        assert rows[f"c{i}.png"].status == "duplicate"
        assert rows[f"c{i}.png"].object_id == rows[f"b{i + 4}.png"].object_id
    assert rows["c4.png"].object_id == rows["a7.png"].object_id
    assert MediaItem.objects.count() == 12
    assert "a batch failed" not in caplog.text


def test_a_job_killed_while_the_next_batch_is_in_flight_leaves_no_files_and_resumes(
    settings, curator, media_store, monkeypatch
):
    """The second batch's commit dies while the third batch's files are already stored: those
    files go with it (no orphans), and the resumed job ends with every input done once."""
    settings.BAGGINTAG_INGEST_THREADS = 1
    pictures = _pictures(740, 20)
    job = media_upload_bulk_start(
        files=[SimpleUploadedFile(f"p{i:02d}.png", d) for i, d in enumerate(pictures)], added_by=curator
    )
    restore = job_items_record_dying(monkeypatch, on_call=2)
    with pytest.raises(WorkerKilled):
        media_upload_bulk_run(job_id=job.pk)
    assert MediaItem.objects.count() == 8  # the first batch only
    assert _stored_keys(media_store) == _item_keys()

    restore()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(days=1))  # stale
    media_upload_bulk_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 20}
    assert MediaItem.objects.count() == 20
    assert _stored_keys(media_store) == _item_keys()


def test_cancelling_a_bulk_job_commits_the_batch_in_flight_and_stops(
    settings, curator, media_store, monkeypatch
):
    settings.BAGGINTAG_INGEST_THREADS = 1
    pictures = _pictures(770, 30)
    job = media_upload_bulk_start(
        files=[SimpleUploadedFile(f"p{i:02d}.png", d) for i, d in enumerate(pictures)], added_by=curator
    )
    real = job_services.job_items_record

    def cancel_on_first(**kwargs):  # type: ignore[no-untyped-def]
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)  # a user presses Cancel
        return real(**kwargs)

    monkeypatch.setattr(job_services, "job_items_record", cancel_on_first)
    media_upload_bulk_run(job_id=job.pk)
    job.refresh_from_db()
    # Batch 1 committed and saw the cancel; batch 2 was already probed: it is committed too.
    assert MediaItem.objects.count() == 16
    assert job.progress_done == 16
    assert job.status == Job.Status.CANCELLED
    assert _stored_keys(media_store) == _item_keys()
