"""Editing datasets on pages (docs/datasets.md#pages): the dataset form, the requirement
editor, subsets, the member gallery with exclude/unexclude, and snapshots. Each view parses a
form, calls one service or selector and renders; service errors land on the fields they name."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.ints import int_param
from apps.datasets import selectors, services
from apps.datasets.api.serializers import requirements_data
from apps.datasets.forms import DatasetForm, RequirementsForm, SnapshotForm, SubsetForm, field_errors
from apps.datasets.models import Dataset, Subset
from apps.datasets.selectors import pages
from apps.datasets.selectors import snapshots as snaps
from apps.datasets.services.snapshots import snapshot_create as freeze
from apps.media.forms import SelectionForm

GALLERY_SIZE = 60
DIFF_ROWS = 100
CHANGE = "datasets.change_dataset"


def _detail(dataset: Dataset) -> str:
    return reverse("datasets:dataset-detail", args=[dataset.pk])


@login_required
@permission_required("datasets.add_dataset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def dataset_create(request: HttpRequest) -> HttpResponse:
    form = DatasetForm(request.POST or None)
    if form.is_valid():
        try:
            return redirect_after_post(request, _detail(services.dataset_create(**form.cleaned_data)))
        except DomainError as err:
            field_errors(form, err)
    status = 422 if form.errors else 200
    return render_page(request, "datasets/dataset_form.html", None, {"form": form}, status=status)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def dataset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = selectors.dataset_get(dataset_id=pk)
    initial = {
        f: getattr(dataset, f) for f in ("name", "slug", "description", "purpose", "licence_notes", "query")
    }
    form = DatasetForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            return redirect_after_post(
                request, _detail(services.dataset_update(dataset=dataset, **form.cleaned_data))
            )
        except DomainError as err:
            field_errors(form, err)
            dataset.refresh_from_db()
    context = {"form": form, "dataset": dataset}
    return render_page(
        request, "datasets/dataset_form.html", None, context, status=422 if form.errors else 200
    )


@login_required
@permission_required("datasets.delete_dataset", raise_exception=True)
@require_POST
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    services.dataset_delete(dataset=selectors.dataset_get(dataset_id=pk))
    return redirect_after_post(request, reverse("datasets:dataset-list"))


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def requirements_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The requirement editor: contradictions are field errors and nothing is saved."""
    dataset = selectors.dataset_get(dataset_id=pk)
    initial = RequirementsForm.initial_from(requirements_data(dataset))
    form = RequirementsForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            services.dataset_update(dataset=dataset, requirements=form.values())
            return redirect_after_post(request, _detail(dataset))
        except DomainError as err:
            field_errors(form, err)
    context = {"form": form, "dataset": dataset}
    return render_page(
        request, "datasets/requirements_form.html", None, context, status=422 if form.errors else 200
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def subset_form(request: HttpRequest, pk: int, sid: int | None = None) -> HttpResponse:
    """Create a subset (no `sid`) or edit one."""
    dataset = selectors.dataset_get(dataset_id=pk)
    subset = selectors.subset_get(dataset=dataset, subset_id=sid) if sid is not None else None
    initial = {f: getattr(subset, f) for f in ("name", "slug", "description", "query")} if subset else {}
    form = SubsetForm(request.POST or None, initial=initial)
    if form.is_valid():
        try:
            if subset is None:
                services.subset_create(dataset=dataset, **form.cleaned_data)
            else:
                services.subset_update(subset=subset, **form.cleaned_data)
            return redirect_after_post(request, _detail(dataset))
        except DomainError as err:
            field_errors(form, err)
    context = {"form": form, "dataset": dataset, "subset": subset}
    return render_page(
        request, "datasets/subset_form.html", None, context, status=422 if form.errors else 200
    )


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def subset_delete(request: HttpRequest, pk: int, sid: int) -> HttpResponse:
    dataset = selectors.dataset_get(dataset_id=pk)
    services.subset_delete(subset=selectors.subset_get(dataset=dataset, subset_id=sid))
    return redirect_after_post(request, _detail(dataset))


def _owner(request: Any, dataset: Dataset) -> Dataset | Subset:
    sid = int_param(request.get("subset"), field="subset", minimum=1)
    return selectors.subset_get(dataset=dataset, subset_id=sid) if sid else dataset


@login_required
@require_safe
def members(request: HttpRequest, pk: int) -> HttpResponse:
    """The member gallery: a query bar narrowing the members, keyset pages, thumbnails, and
    exclude (or, under "Excluded", unexclude) for ticked items."""
    dataset = selectors.dataset_get(dataset_id=pk)
    owner = _owner(request.GET, dataset)
    after = int_param(request.GET.get("after"), field="after", minimum=1)
    q = request.GET.get("q", "").strip()
    show_excluded = request.GET.get("show") == "excluded"
    context: dict[str, Any] = {"dataset": dataset, "owner": owner, "q": q, "show_excluded": show_excluded}
    context["subsets"] = list(selectors.subset_list(dataset=dataset))
    status = 200
    try:
        if show_excluded:
            page = pages.excluded_page(dataset=dataset, after=after, limit=GALLERY_SIZE)
        else:
            page = pages.gallery_page(owner=owner, q=q, viewer=request.user, after=after, limit=GALLERY_SIZE)
        context["items"], next_after = page.items, page.next_after
    except DomainError as err:
        context["items"], next_after, status = [], None, 422
        context["query_error"] = err.message
    if next_after:
        query = request.GET.copy()
        query["after"] = str(next_after)
        context["next_query"] = query.urlencode()
    partial = "datasets/partials/_member_page.html" if after else "datasets/partials/_member_tiles.html"
    return render_page(request, "datasets/members.html", partial, context, status=status)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def members_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Exclude, unexclude, add or remove the ticked items (all or nothing), then back."""
    dataset = selectors.dataset_get(dataset_id=pk)
    owner = _owner(request.POST, dataset)
    selection = SelectionForm(request.POST)
    if not selection.is_valid():
        raise DomainError("Tick items in the gallery first.", code="datasets.bad_ids")
    services.members_edit(
        owner=owner, action=request.POST.get("action", ""), item_ids=selection.cleaned_data["ids"]
    )
    back = {k: request.POST[k] for k in ("q", "subset", "show") if request.POST.get(k)}
    url = reverse("datasets:dataset-members", args=[dataset.pk])
    return redirect_after_post(request, f"{url}?{urlencode(back)}" if back else url)


@login_required
@permission_required("datasets.add_snapshot", raise_exception=True)
@require_POST
def snapshot_create(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = selectors.dataset_get(dataset_id=pk)
    form = SnapshotForm(request.POST)
    if not form.is_valid():
        raise DomainError("note: at most 500 characters.", code="datasets.invalid")
    freeze(dataset=dataset, note=form.cleaned_data["note"], user=request.user)
    return redirect_after_post(request, _detail(dataset) + "#snapshots")


@login_required
@require_safe
def snapshot_diff(request: HttpRequest, pk: int) -> HttpResponse:
    """Added, removed and retagged members between snapshots `a` and `b` (`subset` optional)."""
    dataset = selectors.dataset_get(dataset_id=pk)
    a = snaps.snapshot_get(dataset=dataset, snapshot_id=request.GET.get("a"))
    b = snaps.snapshot_get(dataset=dataset, snapshot_id=request.GET.get("b"))
    diff = snaps.snapshot_diff(
        a=a,
        b=b,
        subset=request.GET.get("subset", "").strip()[:100],
        after=int_param(request.GET.get("after"), field="after", default=0),
        limit=DIFF_ROWS,
    )
    context = {"dataset": dataset, "a": a, "b": b, "diff": diff, "kinds": snaps.DIFF_KINDS}
    return render_page(request, "datasets/snapshot_diff.html", None, context)


@login_required
@require_safe
def snapshot_detail(request: HttpRequest, pk: int, sid: int) -> HttpResponse:
    """One snapshot: its parts and frozen members (thumbnails, keyset pages by item id)."""
    dataset = selectors.dataset_get(dataset_id=pk)
    snapshot = snaps.snapshot_get(dataset=dataset, snapshot_id=sid)
    subset = request.GET.get("subset", "").strip()[:100]
    rows, next_after = snaps.snapshot_members_page(
        snapshot=snapshot,
        subset=subset,
        after=int_param(request.GET.get("after"), field="after", default=0),
        limit=DIFF_ROWS,
    )
    context = {
        "dataset": dataset,
        "snapshot": snapshot,
        "parts": snaps.snapshot_parts(snapshot=snapshot),
        "rows": rows,
        "next_after": next_after,
        "subset": subset,
    }
    return render_page(request, "datasets/snapshot_detail.html", None, context)
