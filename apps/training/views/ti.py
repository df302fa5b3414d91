"""Textual Inversion sets on pages (docs/training.md#ti): list, create, edit, delete, export."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.training import selectors
from apps.training.forms import TIForm, field_errors
from apps.training.models import BaseModelProfile, TextualInversion
from apps.training.selectors import pages
from apps.training.services import textual_inversions as tis
from apps.training.views import preview_context
from apps.training.views.exports import exports_page

CHANGE = "training.change_textualinversion"


def _exports_url(ti: TextualInversion) -> str:
    return reverse("training:ti-exports", args=[ti.pk])


@login_required
@require_safe
def ti_list(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.ti_list()[:200])
    return render_page(request, "training/ti_list.html", None, {"tis": rows})


def _form_page(request: HttpRequest, ti: TextualInversion | None) -> HttpResponse:
    if ti is not None:
        initial = TIForm.initial_from(ti)
    else:
        base = (
            selectors.base_model_list().filter(kind=BaseModelProfile.Kind.CHECKPOINT).order_by("name").first()
        )
        initial = {"base_model": base.pk if base else None, "num_vectors": 1, "repeats": 1, "seed": 1234}
        initial["targets"] = [
            t for t in ("kohya", "onetrainer", "diffusers") if base and t in base.supported_trainers
        ]
    form = TIForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            values = form.values()
            saved = (
                tis.ti_create(actor=request.user, **values) if ti is None else tis.ti_update(ti=ti, **values)
            )
            return redirect_after_post(request, reverse("training:ti-edit", args=[saved.pk]) + "?saved=1")
        except DomainError as err:
            if not field_errors(form, err):
                form.add_error(None, err.message)
    context = {"form": form, "ti": ti, "saved": request.GET.get("saved") == "1"}
    status = 422 if request.method == "POST" else 200
    return render_page(request, "training/ti_form.html", None, context, status=status)


@login_required
@permission_required("training.add_textualinversion", raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def ti_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, None)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ti_edit(request: HttpRequest, pk: int) -> HttpResponse:
    ti = selectors.ti_get(ti_id=pk)
    if request.method == "POST" and not request.user.has_perm(CHANGE):
        raise PermissionDenied("Editing Textual Inversion sets needs the change permission.")
    return _form_page(request, ti)


@login_required
@permission_required("training.delete_textualinversion", raise_exception=True)
@require_POST
def ti_delete(request: HttpRequest, pk: int) -> HttpResponse:
    tis.ti_delete(ti=selectors.ti_get(ti_id=pk))
    return redirect_after_post(request, reverse("training:ti-list"))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def ti_exports(request: HttpRequest, pk: int) -> HttpResponse:
    ti = selectors.ti_get(ti_id=pk)
    return exports_page(request, ti, _exports_url(ti))


@login_required
@require_safe
def ti_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The saved set's first items with the TI captions each trainer reads (an htmx panel)."""
    ti = selectors.ti_get(ti_id=pk)
    plan = tis.ti_plan_build(ti, freeze=False, actor=request.user, limit=pages.TI_PREVIEW_ITEMS)
    context = preview_context(pages.ti_preview(plan))
    return render_page(request, "training/partials/_preview.html", None, context)
