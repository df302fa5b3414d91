"""Ingest on behalf of a job: one job input attaches once, and a superseded attempt writes nothing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, MediaSource
from apps.media.services import Origin, media_ingest, metadata_clean
from apps.tags.models import TagSet
from tests import mediafiles

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(curator) -> Job:
    job = job_services.job_start(
        kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator, total=1
    )
    return job_services.job_claim(job_id=job.pk)


def _ingest(job: Job, data: bytes, within=None):  # type: ignore[no-untyped-def]
    return media_ingest(
        stream=io.BytesIO(data),
        origin=Origin(kind="upload", original_filename="a.png", import_job_id=job.pk, import_seq=0),
        metadata=metadata_clean(tags=["cat"], tag_source="site"),
        within=within,
    )


def test_the_same_job_input_attaches_its_origin_and_source_set_once(running):
    data = mediafiles.image_bytes("png", seed=501)
    first = _ingest(running, data)
    again = _ingest(running, data)  # the input run a second time (e.g. after a crash)
    assert again.item.pk == first.item.pk
    assert MediaSource.objects.filter(media_item=first.item).count() == 1
    assert TagSet.objects.filter(media_item=first.item, kind=TagSet.Kind.SOURCE).count() == 1


def test_a_superseded_attempt_stores_no_rows(running):
    Job.objects.filter(pk=running.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    current = job_services.job_claim(job_id=running.pk)
    assert current is not None and current.attempts == 2

    def record(result):  # type: ignore[no-untyped-def]
        job_services.job_item_record(
            job=running, seq=0, input="a.png", status="created", object_id=result.item.pk
        )

    with pytest.raises(JobSuperseded):
        _ingest(running, mediafiles.image_bytes("png", seed=502), within=record)
    assert MediaItem.objects.count() == 0
    assert MediaSource.objects.count() == 0
    assert TagSet.objects.count() == 0
    assert JobItem.objects.count() == 0
