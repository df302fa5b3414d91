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


def job_items_failed_first(*, job: Job, after: str = "", limit: int) -> tuple[list[JobItem], str]:
    """One page of a job's results with the failed inputs first, each group in input order.

    `after` is the previous page's cursor (`f:<seq>` while in the failed inputs, `o:<seq>` in the
    others); the second value is the next page's cursor, or "" after the last page. Keyset
    pages on (job, seq), so a page costs the same however far down the list it is.
    """
    phase, _, raw = after.partition(":")
    last = (
        int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else -1
    )  # a bad cursor: from the top
    items = JobItem.objects.filter(job=job)
    failed = JobItem.Status.FAILED
    rows: list[JobItem] = []
    # counts[status] moves with every recorded input (job_item_record): no failures, no scan.
    if phase in ("", "f") and (job.counts or {}).get(failed, 0):
        rows = list(items.filter(status=failed, seq__gt=last).order_by("seq")[: limit + 1])
        last = -1
    if len(rows) <= limit:
        rows += list(
            items.exclude(status=failed).filter(seq__gt=last).order_by("seq")[: limit + 1 - len(rows)]
        )
    page = rows[:limit]
    if len(rows) <= limit or not page:
        return page, ""
    tail = page[-1]
    return page, f"{'f' if tail.status == failed else 'o'}:{tail.seq}"
