"""A job's result list: failed inputs first, and every result reachable by "Show more" pages."""

from __future__ import annotations

import re

import pytest

from apps.core.exceptions import DomainError
from apps.jobs import services, views
from apps.jobs.models import Job, JobItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(curator) -> Job:
    """Seven inputs; 2 and 5 failed."""
    job = services.job_start(
        title="Upload", kind="x", task="tests.noop", params={}, created_by=curator, total=7
    )
    for seq in range(7):
        if seq in (2, 5):
            services.job_item_record(
                job=job, seq=seq, input=f"in-{seq}", status=JobItem.Status.FAILED, error=DomainError("bad")
            )
        else:
            services.job_item_record(job=job, seq=seq, input=f"in-{seq}", status=JobItem.Status.CREATED)
    return Job.objects.get(pk=job.pk)


def inputs(html: str) -> list[str]:
    return re.findall(r'class="wrap">(in-\d)<', html)


def test_failed_inputs_come_first(client, curator, job):
    client.force_login(curator)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert inputs(html)[:2] == ["in-2", "in-5"]


def test_the_list_is_not_cut_off(client, curator, job, monkeypatch):
    monkeypatch.setattr(views, "STATUS_ITEMS", 3)
    client.force_login(curator)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    seen = inputs(html)
    while 'class="more"' in html:
        after = html.split("?after=")[1].split('"')[0]
        html = client.get(f"/jobs/{job.pk}/items", {"after": after}, HTTP_HX_REQUEST="true").content.decode()
        seen += inputs(html)
    assert seen == ["in-2", "in-5", "in-0", "in-1", "in-3", "in-4", "in-6"]


def test_long_inputs_are_shown_whole(client, curator):
    job = services.job_start(
        title="Upload", kind="x", task="tests.noop", params={}, created_by=curator, total=1
    )
    long_url = "https://example.com/" + "a" * 200
    services.job_item_record(
        job=job, seq=0, input=long_url, status=JobItem.Status.FAILED, error=DomainError("x")
    )
    client.force_login(curator)
    assert long_url in client.get(f"/jobs/{job.pk}/").content.decode()
