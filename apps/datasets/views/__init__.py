"""Dataset pages (docs/datasets.md#pages): the list and a dataset with its validation report."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from apps.core.htmx import render_page
from apps.core.ints import int_param
from apps.datasets import selectors
from apps.datasets.selectors import snapshots

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
