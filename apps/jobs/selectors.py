"""Reads of jobs, with visibility: people see their own jobs, staff see all."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.core.exceptions import NotFoundError
from apps.jobs.models import Job, JobItem


def job_list(*, viewer: Any) -> QuerySet[Job]:
    """Jobs the viewer may see, newest first."""
    qs = Job.objects.select_related("created_by").order_by("-id")
    if viewer.is_staff:
        return qs
    return qs.filter(created_by=viewer)


def job_get(*, job_id: int, viewer: Any) -> Job:
    """One visible job or NotFoundError."""
    try:
        return job_list(viewer=viewer).get(pk=job_id)
    except (Job.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFoundError(f"Job {job_id} not found.", code="jobs.not_found") from exc


def job_item_list(*, job: Job) -> QuerySet[JobItem]:
    """Per-input outcomes of a job in input order."""
    return JobItem.objects.filter(job=job).order_by("seq")
