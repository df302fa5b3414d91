"""The jobs pages in Chromium: honest outcomes, counts, what each job is about, retry."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from apps.jobs.models import Job
from tests import mediafiles

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

JOB_TIMEOUT_MS = 60_000


def _upload(curator, **data) -> int:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(curator)
    response = client.post("/api/media/upload-bulk", data, format="multipart")
    assert response.status_code == 202, response.content
    return int(response.json()["job"]["id"])


def _wait_finished(job_id: int) -> Job:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_jobs_list_shows_outcomes_counts_and_subjects_and_a_failed_job_retries(
    signed_in: Page, live_server, curator, celery_worker_thread
) -> None:
    page = signed_in
    partly = _upload(
        curator,
        files=[SimpleUploadedFile("good.png", mediafiles.image_bytes("png", seed=77))],
        urls="http://127.0.0.1/refused.jpg",
    )
    failed = _upload(curator, urls="http://127.0.0.1/also-refused.jpg")
    assert _wait_finished(partly).status == Job.Status.SUCCEEDED
    assert _wait_finished(failed).status == Job.Status.FAILED

    page.goto(f"{live_server.url}/jobs/")
    partly_row = page.locator("tr", has=page.locator(f"a[href='/jobs/{partly}/']"))
    expect(partly_row.locator(".status")).to_have_text("Finished with 1 failure")
    expect(partly_row.locator(".job-counts")).to_contain_text("1 created")
    expect(partly_row.locator(".job-counts a.failed")).to_have_text("1 failed")
    expect(partly_row).to_contain_text("good.png")
    failed_row = page.locator("tr", has=page.locator(f"a[href='/jobs/{failed}/']"))
    expect(failed_row.locator(".status")).to_have_text("Failed")
    expect(failed_row).to_contain_text("http://127.0.0.1/also-refused.jpg")

    failed_row.locator(".job-counts a.failed").click()
    expect(page).to_have_url(f"{live_server.url}/jobs/{failed}/#results")
    job = page.locator("section.job")
    expect(job.locator("li.result.failed")).to_have_count(1)
    job.get_by_role("button", name="Retry").click()
    expect(job.locator("h2 .status")).not_to_have_text("Failed", timeout=5_000)  # queued or running
    expect(page.locator("section.job")).to_have_attribute("data-status", "failed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("section.job")).to_contain_text("attempt 2")
    assert Job.objects.get(pk=failed).attempts == 2
