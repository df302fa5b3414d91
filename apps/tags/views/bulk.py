"""Pages for bulk tag operations: the bulk editor (query → preview → apply → undo) and the
operation history."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import render_page
from apps.core.ints import INT_MAX, int_param
from apps.media.models import MediaItem
from apps.tags import selectors
from apps.tags.models import Operation, TagType
from apps.tags.services import operations
from apps.tags.services.operations.plan import tag_list_parse

WRITE = "tags.change_tagassignment"
PAGE = 50
ITEMS_PAGE = 60
ACTION_CHOICES = [
    ("add", "Add tags"),
    ("remove", "Remove tags"),
    ("replace", "Replace tags"),
    ("rename", "Rename a tag"),
    ("set_type", "Set tag type"),
]
SET_KIND_CHOICES = [("curated", "Curated"), ("tagger", "Tagger output"), ("derived", "Derived")]
# Service field names (DomainError details) → form fields.
FIELD_NAMES = {
    "from": "from_tags",
    "to": "to_tags",
    "type": "type_key",
    "ids": "ids",
    "q": "q",
    "tags": "tags",
}


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=ACTION_CHOICES, initial="add")
    q = forms.CharField(
        required=False,
        max_length=2000,
        label="Items matching",
        widget=forms.TextInput(attrs={"placeholder": "1girl -smile rating:g", "autocomplete": "off"}),
    )
    ids = forms.CharField(
        required=False,
        label="or these item ids",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "12 15 16"}),
    )
    tags = forms.CharField(
        required=False,
        label="Tags",
        help_text="Comma-separated, or space-separated booru names.",
        widget=forms.TextInput(attrs={"placeholder": "smile, blue_sky", "autocomplete": "off"}),
    )
    from_tags = forms.CharField(
        required=False, label="From", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    to_tags = forms.CharField(
        required=False, label="To", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    type_key = forms.ChoiceField(required=False, label="New type", choices=[])
    set_kind = forms.ChoiceField(choices=SET_KIND_CHOICES, initial="curated", label="In tag sets")
    scope = forms.ChoiceField(
        choices=[("items", "These items only"), ("library", "Whole library: alias old → new, deprecate old")],
        initial="items",
        required=False,
        label="Rename scope",
    )
    revive_tombstones = forms.BooleanField(
        required=False, initial=True, label="Re-add tags someone removed before (tombstones)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type_field = self.fields["type_key"]
        assert isinstance(type_field, forms.ChoiceField)
        type_field.choices = [("", "—"), *TagType.objects.values_list("key", "name")]

    def clean_ids(self) -> list[int]:
        text = self.cleaned_data.get("ids") or ""
        parts = [p for p in re.split(r"[\s,]+", text) if p]
        bad = [p for p in parts if not (p.isascii() and p.isdigit() and 0 < int(p) <= INT_MAX)]
        if bad:
            raise forms.ValidationError(
                f"Not item ids: {', '.join(bad[:5])}. Ids are whole numbers from 1 to {INT_MAX}."
            )
        return [int(p) for p in parts]

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "action": data["action"],
            "tags": tag_list_parse(data.get("tags") or ""),
            "from_tags": tag_list_parse(data.get("from_tags") or ""),
            "to_tags": tag_list_parse(data.get("to_tags") or ""),
            "type_key": data.get("type_key") or "",
            "set_kind": data["set_kind"],
            "q": data.get("q") or "",
            "ids": data.get("ids") or [],
            "revive_tombstones": bool(data.get("revive_tombstones")),
            "scope": data.get("scope") or "items",
        }

    def add_domain_error(self, err: DomainError) -> None:
        """Put a service error next to the field it names, else above the form."""
        fields = err.details.get("fields") if isinstance(err.details, dict) else None
        if isinstance(fields, dict) and fields:
            for name, messages in fields.items():
                field = FIELD_NAMES.get(name, name)
                target = field if field in self.fields else None
                for message in messages if isinstance(messages, list) else [messages]:
                    self.add_error(target, str(message))
            if err.message and not any(err.message in str(m) for m in self.non_field_errors()):
                self.add_error(None, err.message)
        else:
            self.add_error(None, err.message)


def _require_write(request: HttpRequest) -> None:
    if not request.user.has_perm(WRITE):
        raise PermissionDenied


def _panel(request: HttpRequest, form: BulkForm, status: int = 200, **extra: Any) -> HttpResponse:
    context = {"form": form, "can_write": request.user.has_perm(WRITE), **extra}
    return render_page(request, "tags/bulk.html", "tags/partials/_bulk_panel.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def bulk_editor(request: HttpRequest) -> HttpResponse:
    """The bulk editor; `?q=`, `?ids=`, `?action=`, `?tags=` prefill it, or the same fields posted
    (the library's selection posts its ids: too many for a URL)."""
    given = request.POST if request.method == "POST" else request.GET
    initial = {key: given[key] for key in ("q", "ids", "action", "tags", "from_tags") if key in given}
    return _panel(request, BulkForm(initial={"revive_tombstones": True, **initial}))


@login_required
@require_POST
def bulk_preview(request: HttpRequest) -> HttpResponse:
    """Freeze the target and show what would change (422 with the form on bad input)."""
    _require_write(request)
    form = BulkForm(request.POST)
    if form.is_valid():
        try:
            preview = operations.operation_preview(actor=request.user, **form.service_kwargs())
        except DomainError as err:
            form.add_domain_error(err)
        else:
            return _panel(request, form, preview=preview)
    return _panel(request, form, status=422)


def _result(
    request: HttpRequest,
    outcome: operations.Outcome,
    *,
    template: str,
    partial: str = "tags/partials/_operation_result.html",
) -> HttpResponse:
    operation = selectors.operation_get(operation_id=outcome.operation.pk, viewer=request.user)
    context = {
        "operation": operation,
        "job": outcome.job,
        "can_write": request.user.has_perm(WRITE),
        "can_undo": operations.operation_can_undo(operation),
    }
    return render_page(request, template, partial, context)


@login_required
@require_POST
def bulk_apply(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a preview: the result (sync) or the job's progress (large operations)."""
    _require_write(request)
    operation = selectors.operation_get(operation_id=pk, viewer=request.user)
    try:
        outcome = operations.operation_apply(operation=operation, actor=request.user)
    except DomainError as err:
        if err.status_code != 409:
            return _error(request, err)
        # Applied (or expired) meanwhile: say so where the result goes and retire the button.
        context = {"error": err, "operation": operation}
        return render_page(
            request, "error.html", "tags/partials/_bulk_apply_refused.html", context, status=409
        )
    # The answer also replaces the Apply button (out of band), so it cannot be pressed twice.
    return _result(request, outcome, template="tags/bulk.html", partial="tags/partials/_bulk_applied.html")


@login_required
@require_POST
def operation_undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Undo (or, for an undo, redo). From the history list (`?view=row`) the row is re-rendered."""
    _require_write(request)
    operation = selectors.operation_get(operation_id=pk, viewer=request.user)
    try:
        outcome = operations.operation_undo(operation=operation, actor=request.user)
    except DomainError as err:
        return _error(request, err)
    if request.GET.get("view") == "row":
        op = selectors.operation_get(operation_id=pk, viewer=request.user)
        op.can_undo = operations.operation_can_undo(op)  # type: ignore[attr-defined]  # the row's button
        context = {
            "op": op,
            "undo": selectors.operation_get(operation_id=outcome.operation.pk, viewer=request.user),
            "can_write": True,
        }
        return render_page(request, "tags/operations.html", "tags/partials/_operation_row.html", context)
    return _result(request, outcome, template="tags/bulk.html")


def _error(request: HttpRequest, err: DomainError) -> HttpResponse:
    return render_page(
        request,
        "error.html",
        "partials/_error.html",
        {"error": err},
        status=err.status_code if err.status_code in (403, 409) else 422,
    )


@login_required
@require_safe
def operation_list(request: HttpRequest) -> HttpResponse:
    """History, newest first, keyset-paged with `?before=<id>`; filter by kind and status."""
    rows = selectors.operation_list(viewer=request.user)
    kind, status = request.GET.get("kind", ""), request.GET.get("status", "")
    if kind in Operation.Kind.values:
        rows = rows.filter(kind=kind)
    if status in Operation.Status.values:
        rows = rows.filter(status=status)
    before = request.GET.get("before", "")
    if before_id := int_param(before, field="before", minimum=1):
        rows = rows.filter(pk__lt=before_id)
    page = list(rows[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    deltas = selectors.operation_edit_deltas(operations=page)
    for op in page:
        op.delta = deltas.get(op.pk)  # type: ignore[attr-defined]  # shown in the row
        op.can_undo = operations.operation_can_undo(op)  # type: ignore[attr-defined]  # its button
    query = {"kind": kind, "status": status}
    next_query = "&".join(f"{k}={v}" for k, v in query.items() if v)
    context = {
        "operations": page,
        "next_before": page[-1].pk if more else None,
        "next_query": next_query,
        "kind": kind,
        "status": status,
        "kinds": Operation.Kind.choices,
        "statuses": Operation.Status.choices,
        "can_write": request.user.has_perm(WRITE),
        "paged": bool(before),
    }
    partial = (
        "tags/partials/_operation_rows.html"
        if request.GET.get("rows")
        else "tags/partials/_operation_list.html"
    )
    return render_page(request, "tags/operations.html", partial, context)


@login_required
@require_safe
def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One operation: what it asked, predicted and did, conflicts, and the items it changed."""
    operation = selectors.operation_get(operation_id=pk, viewer=request.user)
    after = int_param(request.GET.get("after"), field="after", default=0)
    ids = selectors.operation_item_ids(operation=operation, after=after, limit=ITEMS_PAGE + 1)
    found = MediaItem.objects.in_bulk(ids[:ITEMS_PAGE])
    context = {
        "operation": operation,
        "delta": selectors.operation_edit_deltas(operations=[operation]).get(operation.pk),
        "items": [found[i] for i in ids[:ITEMS_PAGE] if i in found],
        "next_after": ids[ITEMS_PAGE - 1] if len(ids) > ITEMS_PAGE else None,
        "can_write": request.user.has_perm(WRITE),
        "can_undo": operations.operation_can_undo(operation),
        "detail": True,
    }
    partial = "tags/partials/_operation_items.html" if request.GET.get("items") else None
    return render_page(request, "tags/operations.html", partial, context)
