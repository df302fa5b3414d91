"""Datasets on library pages (docs/datasets.md#pages), through media's extension points:
"Add to dataset…" in the library's selection bar and the "Datasets" panel of the item page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.datasets import selectors, services
from apps.datasets.forms import AddToDatasetForm, field_errors
from apps.datasets.selectors import pages
from apps.datasets.services.members import MAX_IDS
from apps.media.forms import SelectionForm
from apps.media.models import MediaItem
from apps.media.selectors import media_item_get

CHANGE = "datasets.change_dataset"


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def selection_add(request: HttpRequest) -> HttpResponse:
    """The library's selected items → a dataset (or one of its subsets): ask, then add."""
    selection = SelectionForm(request.POST)
    if not selection.is_valid():
        raise DomainError("Select items in the library first.", code="datasets.bad_ids")
    ids: list[int] = selection.cleaned_data["ids"]
    form = AddToDatasetForm(request.POST if "dataset" in request.POST else None)
    if form.is_valid():
        dataset = form.cleaned_data["dataset"]
        try:
            owner = dataset
            if slug := form.cleaned_data["subset"].strip():
                owner = pages.subset_by_slug(dataset=dataset, slug=slug)
            services.members_edit(owner=owner, action="add", item_ids=ids)
            return redirect_after_post(request, reverse("datasets:dataset-members", args=[dataset.pk]))
        except DomainError as err:
            field_errors(form, err)
    context = {
        "form": form,
        "ids": " ".join(map(str, ids)),
        "count": len(ids),
        "too_many": len(ids) > MAX_IDS,
        "limit": MAX_IDS,
        "has_datasets": pages.dataset_choices().exists(),
    }
    return render_page(
        request, "datasets/selection_add.html", None, context, status=422 if form.errors else 200
    )


ACTIONS = {"add", "remove", "exclude", "unexclude"}


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def item_membership(request: HttpRequest, pk: int) -> HttpResponse:
    """The item page's Datasets panel: add the item to, remove it from, exclude it from or
    unexclude it from one dataset; back to the item page."""
    item = media_item_get(item_id=pk, viewer=request.user)
    dataset = selectors.dataset_get(dataset_id=request.POST.get("dataset"))
    services.members_edit(owner=dataset, action=request.POST.get("action", ""), item_ids=[item.pk])
    return redirect_after_post(request, reverse("media:item-detail", args=[item.pk]) + "#datasets")


def item_panel(request: HttpRequest, item: MediaItem) -> str:
    """The item page's "Datasets" section (registered with media in DatasetsConfig.ready())."""
    panel = pages.item_memberships(item=item, viewer=request.user)
    held = {m.dataset.pk for m in panel.memberships if m.state != "query"}
    context = {
        "item": item,
        "memberships": panel.memberships,
        "unchecked": panel.unchecked,
        "checked_max": pages.ITEM_PANEL_QUERY_CHECKS,
        "choices": [d for d in pages.dataset_choices()[:500] if d.pk not in held],
        "can_change": request.user.has_perm(CHANGE),
    }
    return render_to_string("datasets/partials/_item_panel.html", context, request=request)
