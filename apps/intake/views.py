"""The intake queue page (docs/intake.md#pages): progress per dataset and per entry, the
add-entry form, process / review / delete buttons."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError, ForbiddenError
from apps.core.htmx import redirect_after_post, render_page
from apps.core.ints import int_param
from apps.intake import selectors, services
from apps.intake.forms import EntryForm
from apps.intake.models import IntakeEntry

PAGE_SIZE = 50


def _queue_context(request: HttpRequest) -> dict[str, Any]:
    dataset_id = int_param(request.GET.get("dataset"), field="dataset", minimum=1)
    state = request.GET.get("state") or ""
    if state not in IntakeEntry.State.values:
        state = ""
    entries, next_before = selectors.entries_page(
        entries=selectors.entry_list(dataset_id=dataset_id, state=state),
        before=int_param(request.GET.get("before"), field="before", minimum=1) or 0,
        limit=PAGE_SIZE,
    )
    return {
        "entries": entries,
        "next_before": next_before,
        "progress": selectors.dataset_progress(dataset_id=dataset_id),
        "busy": any(e.state == IntakeEntry.State.FETCHING for e in entries),
        "dataset_filter": dataset_id,
        "state_filter": state,
        "states": IntakeEntry.State.choices,
        "query_string": request.GET.urlencode(),
    }


@login_required
@require_safe
def queue(request: HttpRequest) -> HttpResponse:
    """The queue; htmx polls `intake/rows` for the live part while anything is fetching."""
    context = {**_queue_context(request), "form": EntryForm()}
    return render_page(request, "intake/queue.html", "intake/partials/_queue.html", context)


@login_required
@require_safe
def queue_rows(request: HttpRequest) -> HttpResponse:
    return render_page(request, "intake/queue.html", "intake/partials/_queue.html", _queue_context(request))


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise ForbiddenError(
            "You do not have permission to change the intake queue.", code="intake.forbidden"
        )


@login_required
@require_http_methods(["POST"])
def entry_add(request: HttpRequest) -> HttpResponse:
    """Plan an entry (or one per URL); errors come back beside their fields (422)."""
    form = EntryForm(request.POST, request.FILES)
    if not request.user.has_perm("intake.add_intakeentry"):
        form.add_error(None, "You do not have permission to plan intake entries.")
    elif form.is_valid():
        args = form.service_arguments()
        try:
            if args["kind"] == IntakeEntry.Kind.URLS and form.cleaned_data["split"]:
                services.intake_entries_bulk_add(
                    dataset=args["dataset"],
                    subset=args["subset"],
                    urls=args["urls"],
                    split=True,
                    notes=args["notes"],
                    on_arrival=args["on_arrival"],
                    created_by=request.user,
                )
            else:
                services.intake_entry_create(**args, created_by=request.user)
        except DomainError as err:
            form.add_service_error(err)
        else:
            return redirect_after_post(request, reverse("intake:queue"))
    context = {**_queue_context(request), "form": form}
    return render_page(request, "intake/queue.html", None, context, status=422)


@login_required
@require_POST
def entry_process(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "intake.change_intakeentry")
    services.intake_entry_process(entry=selectors.entry_get(entry_id=pk), actor=request.user)
    return redirect_after_post(request, reverse("intake:queue"))


@login_required
@require_POST
def entry_review(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "intake.change_intakeentry")
    services.intake_entry_review(entry=selectors.entry_get(entry_id=pk))
    return redirect_after_post(request, reverse("intake:queue"))


@login_required
@require_POST
def entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "intake.delete_intakeentry")
    services.intake_entry_delete(entry=selectors.entry_get(entry_id=pk))
    return redirect_after_post(request, reverse("intake:queue"))
