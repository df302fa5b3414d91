"""Dataset group pages (docs/datasets.md#groups): the list with a create form, and a group with
its entries and forms to append datasets, copy or nest another group, and remove entries."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError, ForbiddenError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.ints import int_param
from apps.datasets.forms import GroupForm, field_errors
from apps.datasets.selectors import groups as reads
from apps.datasets.selectors.pages import dataset_choices
from apps.datasets.services import groups as writes

PAGE_SIZE = 50
CHANGE = "datasets.change_datasetgroup"


@login_required
@require_http_methods(["GET", "POST"])
def group_list(request: HttpRequest) -> HttpResponse:
    """Groups newest first (`search` narrows by name); POST creates one."""
    form = GroupForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("datasets.add_datasetgroup"):
            raise ForbiddenError("You may not create dataset groups.")
        if form.is_valid():
            try:
                group = writes.group_create(**form.cleaned_data)
                return redirect_after_post(request, reverse("datasets:group-detail", args=[group.pk]))
            except DomainError as err:
                field_errors(form, err)
    search = request.GET.get("search", "").strip()[:200]
    groups = reads.group_list(search=search)
    if after := int_param(request.GET.get("after"), field="after", minimum=1):
        groups = groups.filter(pk__lt=after)
    rows = list(groups[: PAGE_SIZE + 1])
    context = {
        "groups": rows[:PAGE_SIZE],
        "next_after": rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None,
        "form": form,
        "search": search,
    }
    return render_page(request, "datasets/group_list.html", None, context, status=422 if form.errors else 200)


def _context(group: Any, **extra: Any) -> dict[str, Any]:
    return {
        "group": group,
        "entries": reads.group_entries(group=group),
        "flat": reads.group_datasets(group=group),
        "dataset_choices": dataset_choices(),
        "group_choices": reads.group_list().exclude(pk=group.pk)[:500],
        **extra,
    }


@login_required
@require_safe
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render_page(request, "datasets/group_detail.html", None, _context(reads.group_get(group_id=pk)))


def _ids(request: HttpRequest, name: str) -> list[str]:
    return [v for v in request.POST.getlist(name) if v]


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_POST
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """One change: `op` append (data_sets, groups to nest), copy (group), remove (data_sets,
    groups) or delete. A refused change (a cycle, a non-member) is shown on the page (422, as
    pages answer bad input; docs/architecture.md)."""
    group = reads.group_get(group_id=pk)
    op = request.POST.get("op", "")
    try:
        if op == "append":
            writes.group_append(
                group=group, data_sets=_ids(request, "data_sets"), groups=_ids(request, "groups")
            )
        elif op == "copy":
            writes.group_append_group(group=group, other_id=request.POST.get("group"))
        elif op == "remove":
            writes.group_remove(
                group=group, data_sets=_ids(request, "data_sets"), groups=_ids(request, "groups")
            )
        elif op == "delete":
            writes.group_delete(group=group)
            return redirect_after_post(request, reverse("datasets:group-list"))
        else:
            raise DomainError("op: append, copy, remove or delete.", code="datasets.bad_action")
    except DomainError as err:
        context = _context(group, error=err.message)
        status = err.status_code if err.status_code in (403, 404, 409) else 422
        return render_page(request, "datasets/group_detail.html", None, context, status=status)
    return redirect_after_post(request, reverse("datasets:group-detail", args=[group.pk]))
