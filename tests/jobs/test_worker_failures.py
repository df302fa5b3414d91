"""Jobs survive their workers and the broker (issue 9, items 3–6), with real worker processes.

Each test catches a worker at a known place (inside the download of a held input) and kills,
pauses or restarts something there; then checks that the job ends exactly once: one item, one
origin, one source tag set and one result per input. Workers run with a 1 s heartbeat and a
3 s stale time (tests/jobs/conftest.py), so takeovers happen in seconds.
"""

from __future__ import annotations

import os
import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core import spool
from apps.jobs import services
from apps.jobs.models import Job, JobItem
from apps.media.models import MediaItem, MediaSource
from apps.tags.models import TagSet
from tests import mediafiles
from tests.conftest import stored_files
from tests.jobs.conftest import wait_until

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INPUTS = 4
HELD = 2  # the worker is caught while downloading this input


def _upload_urls(api, server) -> int:
    server.held.add(HELD)
    response = api.post(
        "/api/media/upload-bulk",
        {"urls": [server.image(n) for n in range(INPUTS)], "tags": ["fenced"], "tag_source": "crash test"},
        format="json",
    )
    assert response.status_code == 202, response.content
    return int(response.json()["job"]["id"])


def _sweep_until_taken_over(job_id: int) -> None:
    """Run the sweeper (beat's job) until another attempt owns the job (a worker's start-up
    sweep may get there first)."""
    wait_until(
        lambda: services.job_sweep() and Job.objects.get(pk=job_id).attempts >= 2,
        what="the stale job to be re-queued and claimed again",
    )


def _sweep_until_claimed(job_id: int) -> None:
    wait_until(
        lambda: services.job_sweep() and Job.objects.get(pk=job_id).status != Job.Status.QUEUED,
        what="the owed message to be sent and claimed",
    )


def _finished(job_id: int, timeout: float = 40.0) -> Job:
    return wait_until(
        lambda: (job := Job.objects.get(pk=job_id)).is_finished and job, timeout=timeout, what=f"job {job_id}"
    )


def _assert_each_input_done_once(job: Job) -> None:
    assert job.status == Job.Status.SUCCEEDED, (job.status, job.error_message)
    assert job.counts == {"created": INPUTS}
    assert JobItem.objects.filter(job=job).count() == INPUTS
    assert MediaItem.objects.count() == INPUTS
    assert MediaSource.objects.filter(import_job=job).count() == INPUTS
    assert TagSet.objects.filter(origin_label="crash test").count() == INPUTS


def test_killed_worker_job_is_resumed_by_the_sweeper_exactly_once(api, start_worker, image_server):
    first = start_worker()
    job_id = _upload_urls(api, image_server)
    wait_until(lambda: HELD in image_server.requested, what="the held download")
    dead_children = first.child_pids()
    first.signal_all(signal.SIGKILL)
    first.process.wait(timeout=10)
    image_server.release()
    start_worker()
    _sweep_until_taken_over(job_id)
    job = _finished(job_id)
    _assert_each_input_done_once(job)
    assert job.attempts == 2
    # The killed child's half-written download was in the data folder's spool, and is gone.
    leftovers = [
        p.name for p in spool.spool_dir().iterdir() if any(f"-{pid}-" in p.name for pid in dead_children)
    ]
    assert leftovers == []


def test_killed_pool_child_job_is_taken_over_by_its_redelivery(api, start_worker, image_server):
    worker = start_worker()
    job_id = _upload_urls(api, image_server)
    wait_until(lambda: HELD in image_server.requested, what="the held download")
    [child] = worker.child_pids()
    image_server.release()
    os.kill(child, signal.SIGKILL)
    # No sweeper here: the message comes back (reject on worker lost); its delivery finds the
    # heartbeat fresh, looks again once it is stale and takes the job over.
    job = _finished(job_id)
    _assert_each_input_done_once(job)
    assert job.attempts == 2


def test_paused_worker_that_wakes_up_after_a_takeover_writes_nothing(api, start_worker, image_server):
    stalled = start_worker(name="stalled")
    job_id = _upload_urls(api, image_server)
    wait_until(lambda: HELD in image_server.requested, what="the held download")
    stalled.signal_all(signal.SIGSTOP)
    image_server.release()
    start_worker(name="second")
    _sweep_until_taken_over(job_id)
    job = _finished(job_id)
    _assert_each_input_done_once(job)
    stalled.signal_all(signal.SIGCONT)
    wait_until(lambda: "is no longer current" in stalled.output(), what="the stalled attempt to stop")
    _assert_each_input_done_once(Job.objects.get(pk=job_id))
    assert Job.objects.get(pk=job_id).attempts == 2


def _upload_files(api, count: int = 2) -> int:
    files = [
        SimpleUploadedFile(f"r{i}.png", mediafiles.image_bytes("png", seed=300 + i)) for i in range(count)
    ]
    response = api.post("/api/media/upload-bulk", {"files": files}, format="multipart")
    assert response.status_code == 202, response.content
    assert response["Content-Type"] == "application/json"
    return int(response.json()["job"]["id"])


def _assert_staging_removed(job_id: int, media_root) -> None:  # type: ignore[no-untyped-def]
    # The worker removes the staged files right after it records the end of the job.
    wait_until(lambda: not Job.objects.get(pk=job_id).holds_files, what="the staged files to be removed")
    assert not any(p.relative_to(media_root).parts[0] == "staging" for p in stored_files(media_root))


def test_queued_jobs_survive_a_redis_restart(api, own_redis, start_worker, media_root):
    job_id = _upload_files(api)
    assert Job.objects.get(pk=job_id).sent_at is not None
    own_redis.stop()
    own_redis.start()  # no persistence: the message is gone
    start_worker(redis_url=own_redis.url)
    _sweep_until_claimed(job_id)
    job = _finished(job_id)
    assert job.status == Job.Status.SUCCEEDED
    assert job.counts == {"created": 2}
    _assert_staging_removed(job_id, media_root)


def test_cancelling_a_queued_job_whose_message_was_lost_removes_its_staged_files(api, own_redis, media_root):
    job_id = _upload_files(api)
    assert any(p.relative_to(media_root).parts[0] == "staging" for p in stored_files(media_root))
    own_redis.stop()
    own_redis.start()
    response = api.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert Job.objects.get(pk=job_id).status == Job.Status.CANCELLED
    assert stored_files(media_root) == []


def test_upload_while_redis_is_down_is_accepted_and_runs_once_it_is_back(
    api, own_redis, start_worker, media_root
):
    own_redis.stop()
    job_id = _upload_files(api)  # 202 JSON, not a 500 page
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.sent_at) == (Job.Status.QUEUED, None)
    assert len([p for p in stored_files(media_root) if p.relative_to(media_root).parts[0] == "staging"]) == 2
    own_redis.start()
    start_worker(redis_url=own_redis.url)
    _sweep_until_claimed(job_id)
    job = _finished(job_id)
    assert (job.status, job.counts) == (Job.Status.SUCCEEDED, {"created": 2})
    _assert_staging_removed(job_id, media_root)
