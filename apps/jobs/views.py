"""Job pages: list, detail, live status partial, cancel."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST, require_safe

from apps.core.htmx import render_page
from apps.core.ints import int_param
from apps.jobs import selectors, services
from apps.jobs.models import Job

PAGE_SIZE = 50
STATUS_ITEMS = 200


def _status(request: HttpRequest, job: Job) -> HttpResponse:
    """The job with the first page of its results, failed inputs first ("Show more" pages on)."""
    items, cursor = selectors.job_items_failed_first(job=job, limit=STATUS_ITEMS)
    return render_page(
        request,
        "jobs/job_detail.html",
        "jobs/partials/_job_status.html",
        {"job": job, "job_items": items, "next_cursor": cursor},
    )


@login_required
def job_items(request: HttpRequest, pk: int) -> HttpResponse:
    """The next page of a job's results (rows appended by the status partial's "Show more")."""
    job = selectors.job_get(job_id=pk, viewer=request.user)
    items, cursor = selectors.job_items_failed_first(
        job=job, after=request.GET.get("after", ""), limit=STATUS_ITEMS
    )
    context = {"job": job, "job_items": items, "next_cursor": cursor}
    return render_page(request, "jobs/job_detail.html", "jobs/partials/_job_items.html", context)


@login_required
@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.job_list(viewer=request.user)
    if after := int_param(request.GET.get("after"), field="after", minimum=1):
        jobs = jobs.filter(pk__lt=after)
    rows = list(jobs[: PAGE_SIZE + 1])
    context = {
        "jobs": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None,
    }
    return render_page(request, "jobs/job_list.html", None, context)


@login_required
@require_safe
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _status(request, selectors.job_get(job_id=pk, viewer=request.user))


@login_required
@require_safe
def job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status partial that pages poll while the job runs."""
    return _status(request, selectors.job_get(job_id=pk, viewer=request.user))


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = services.job_cancel(job=selectors.job_get(job_id=pk, viewer=request.user))
    return _status(request, job)
