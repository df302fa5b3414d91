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


def _failed_job(curator, statuses: list[str]) -> Job:
    from apps.core.exceptions import DomainError

    job = services.job_start(
        kind="media.upload_bulk",
        task="tests.noop",
        params={"inputs": [{"type": "url", "url": f"https://e.com/{i}.jpg"} for i in range(len(statuses))]},
        created_by=curator,
        total=len(statuses),
    )
    running = services.job_claim(job_id=job.pk)
    for seq, status in enumerate(statuses):
        error = DomainError("gone", code="media.url_failed") if status == "failed" else None
        services.job_item_record(
            job=running, seq=seq, input=f"https://e.com/{seq}.jpg", status=status, error=error
        )
    return services.job_finish(job=running)


def test_job_outcome_failures_and_subject_in_the_api(api, curator):
    partly = _failed_job(curator, ["created", "failed"])
    body = api.get(f"/api/jobs/{partly.pk}").json()
    assert (body["status"], body["outcome"], body["failures"]) == ("succeeded", "succeeded_with_failures", 1)
    assert body["outcome_label"] == "Finished with 1 failure"
    assert body["subject"]["label"] == "https://e.com/0.jpg, https://e.com/1.jpg"


def test_retry_a_failed_job_through_the_api(api, curator):
    failed = _failed_job(curator, ["failed", "failed"])
    assert failed.status == "failed"
    response = api.post(f"/api/jobs/{failed.pk}/retry")
    assert response.status_code == 202
    assert response["Location"] == f"/api/jobs/{failed.pk}"
    assert response.json()["job"]["status"] == "queued"
    again = api.post(f"/api/jobs/{failed.pk}/retry")
    assert again.status_code == 409
    assert again.json()["code"] == "jobs.not_failed"


def test_jobs_page_lists_what_each_job_is_about_and_its_counts(client, curator):
    from apps.media.models import MediaItem

    partly = _failed_job(curator, ["created", "failed", "duplicate"])
    video = services.job_start(
        kind="media.frames_extract", task="tests.noop", params={"video_id": 42}, created_by=curator
    )
    client.force_login(curator)
    html = client.get("/jobs/").content.decode()
    assert "Finished with 1 failure" in html
    assert "1 created" in html
    assert "1 duplicate" in html
    assert "1 failed" in html
    assert f'href="/jobs/{partly.pk}/#results"' in html
    assert 'href="/items/42/"' in html
    assert video.subject["label"] == "video 42"
    assert not MediaItem.objects.exists()


def test_failed_job_page_offers_retry_and_retries(client, curator):
    failed = _failed_job(curator, ["failed"])
    client.force_login(curator)
    page = client.get(f"/jobs/{failed.pk}/").content.decode()
    assert f'hx-post="/jobs/{failed.pk}/retry"' in page
    retried = client.post(f"/jobs/{failed.pk}/retry")
    assert retried.status_code == 200
    assert Job.objects.get(pk=failed.pk).status == Job.Status.QUEUED


def test_admin_retries_failed_jobs(client, curator):
    failed = _failed_job(curator, ["failed"])
    boss = User.objects.create_superuser("boss", password="pw-boss-123")
    client.force_login(boss)
    changelist = client.get("/admin/jobs/job/").content.decode()
    assert "Failed" in changelist
    assert "0 / 0 / 1" in changelist
    response = client.post(
        "/admin/jobs/job/", {"action": "retry_jobs", "_selected_action": [failed.pk]}, follow=True
    )
    assert "Retried 1 jobs." in response.content.decode()
    assert Job.objects.get(pk=failed.pk).status == Job.Status.QUEUED
