"""The jobs API: visibility, detail with per-input results, cancel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.jobs import services
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_job(curator) -> Job:
    job = services.job_start(
        kind="media.upload_bulk", task="tests.noop", params={}, created_by=curator, total=2
    )
    running = services.job_claim(job_id=job.pk)
    services.job_item_record(job=running, seq=0, input="a.jpg", status="created", object_id=1)
    return running


def test_job_detail_shows_progress_counts_and_items(api, own_job):
    body = api.get(f"/api/jobs/{own_job.pk}").json()
    assert body["status"] == "running"
    assert body["progress"] == {"done": 1, "total": 2, "percent": 50}
    assert body["counts"] == {"created": 1}
    assert body["items"] == [{"seq": 0, "input": "a.jpg", "status": "created", "object_id": 1, "error": None}]
    paged = api.get(f"/api/jobs/{own_job.pk}/items").json()
    assert [r["seq"] for r in paged["results"]] == [0]


def test_job_list_filters_by_status_and_hides_other_peoples_jobs(api, own_job):
    other = User.objects.create_user("other", password="pw-other-123")
    services.job_start(kind="x", task="tests.noop", params={}, created_by=other)
    ids = [j["id"] for j in api.get("/api/jobs/").json()["results"]]
    assert ids == [own_job.pk]
    assert api.get("/api/jobs/?status=queued").json()["results"] == []
    staff = APIClient()
    staff.force_authenticate(User.objects.create_user("boss", password="pw-boss-123", is_staff=True))
    assert len(staff.get("/api/jobs/").json()["results"]) == 2


def test_cancel_via_api_then_again_is_a_conflict(api, own_job):
    first = api.post(f"/api/jobs/{own_job.pk}/cancel")
    assert first.status_code == 200
    assert first.json()["cancel_requested"] is True
    services.job_finish(job=own_job)
    second = api.post(f"/api/jobs/{own_job.pk}/cancel")
    assert second.status_code == 409
    assert second.json()["code"] == "jobs.finished"


def test_someone_elses_job_is_not_found(own_job):
    client = APIClient()
    client.force_authenticate(User.objects.create_user("other", password="pw-other-123"))
    assert client.get(f"/api/jobs/{own_job.pk}").status_code == 404
    assert client.post(f"/api/jobs/{own_job.pk}/cancel").status_code == 404
