"""Dataset pages (docs/datasets.md#pages): the list and a dataset with its validation report."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_safe

from apps.core.htmx import render_page
from apps.core.ints import int_param
from apps.datasets import buckets, selectors, stats
from apps.datasets.selectors import snapshots
from apps.datasets.services import conform

PAGE_SIZE = 50
REPORT_ROWS = 50


@login_required
@require_safe
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = selectors.dataset_list()
    if after := int_param(request.GET.get("after"), field="after", minimum=1):
        datasets = datasets.filter(pk__lt=after)
    rows = list(datasets[: PAGE_SIZE + 1])
    context = {
        "datasets": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None,
    }
    return render_page(request, "datasets/dataset_list.html", None, context)


@login_required
@require_safe
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The dataset; its validation report arrives by htmx (the partial below)."""
    dataset = selectors.dataset_get(dataset_id=pk)
    return render_page(request, "datasets/dataset_detail.html", None, detail_context(dataset))


def detail_context(dataset: Any) -> dict[str, Any]:
    """The dataset page's sections: subsets and snapshots (docs/datasets.md#pages)."""
    return {
        "dataset": dataset,
        "subsets": list(dataset.subsets.order_by("name")),
        "snapshots": list(snapshots.snapshot_list(dataset=dataset)[:50]),
    }


@login_required
@require_safe
def dataset_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The validation report partial (the whole page without htmx)."""
    dataset = selectors.dataset_get(dataset_id=pk)
    report = selectors.validation_report(
        dataset=dataset,
        viewer=request.user,
        after=int_param(request.GET.get("after"), field="after", default=0),
        limit=REPORT_ROWS,
    )
    return render_page(
        request,
        "datasets/dataset_detail.html",
        "datasets/partials/_report.html",
        {**detail_context(dataset), "report": report},
    )


@login_required
@require_safe
def dataset_stats(request: HttpRequest, pk: int) -> HttpResponse:
    """The statistics partial: plots (server-side SVG) with table fallbacks."""
    dataset = selectors.dataset_get(dataset_id=pk)
    base = buckets.base_param(request.GET.get("base"))
    context = {
        "dataset": dataset,
        "stats": stats.dataset_stats(dataset=dataset, base=base, viewer=request.user),
        "bases": [512, 768, 1024, 1536],
    }
    return render_page(request, "datasets/dataset_detail.html", "datasets/partials/_stats.html", context)


_OPTIONS = ("target", "base", "max_upscale", "quality")
CONFORM_PERMS = ["datasets.change_dataset", "media.add_mediaitem"]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def dataset_conform(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the conform preview partial; POST: start the job and answer its progress partial."""
    dataset = selectors.dataset_get(dataset_id=pk)
    if request.method == "POST":
        if not request.user.has_perms(CONFORM_PERMS):
            raise PermissionDenied("Conforming needs the change-dataset and add-media permissions.")
        options = {k: request.POST.get(k) for k in _OPTIONS}
        job = conform.conform_start(dataset=dataset, options=options, actor=request.user)
        return render_page(
            request,
            "datasets/dataset_detail.html",
            "datasets/partials/_conform_job.html",
            {"dataset": dataset, "job": job},
            status=202,
        )
    options = {k: request.GET.get(k) for k in _OPTIONS}
    preview = conform.conform_preview(
        dataset=dataset,
        options=options,
        after=int_param(request.GET.get("after"), field="after", default=0),
        limit=REPORT_ROWS,
        viewer=request.user,
    )
    return render_page(
        request,
        "datasets/dataset_detail.html",
        "datasets/partials/_conform.html",
        {"dataset": dataset, "preview": preview},
    )
