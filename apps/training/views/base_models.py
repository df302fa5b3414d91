"""Base-model profiles (docs/training.md#pages): the list and a profile's page; custom profiles
are created, edited and deleted here, shipped (seeded) ones are read-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.core.exceptions import ConflictError, DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.training import selectors
from apps.training.forms import BaseModelForm, field_errors
from apps.training.models import BaseModelProfile
from apps.training.services import base_models

CHANGE = "training.change_basemodelprofile"


@login_required
@require_safe
def base_model_list(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.base_model_list().order_by("-seeded", "kind", "family", "name"))
    return render_page(request, "training/base_model_list.html", None, {"profiles": rows})


@login_required
@require_safe
def base_model_detail(request: HttpRequest, ref: str) -> HttpResponse:
    profile = selectors.base_model_get(ref=ref)
    return render_page(request, "training/base_model_detail.html", None, {"profile": profile})


def _custom(ref: str) -> BaseModelProfile:
    profile = selectors.base_model_get(ref=ref)
    if profile.seeded:
        raise ConflictError(
            f"{profile.slug} is a shipped profile and read-only here; create a custom profile instead.",
            code="training.seeded_profile",
        )
    return profile


def _form_page(request: HttpRequest, profile: BaseModelProfile | None) -> HttpResponse:
    initial = (
        BaseModelForm.initial_from(profile) if profile is not None else {"supported_trainers": ["kohya"]}
    )
    form = BaseModelForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = (
                base_models.base_model_create(**form.values())
                if profile is None
                else base_models.base_model_update(profile=profile, **form.values())
            )
            return redirect_after_post(request, reverse("training:base-model-detail", args=[saved.slug]))
        except DomainError as err:
            if not field_errors(form, err):
                form.add_error(None, err.message)
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "profile": profile}
    return render_page(request, "training/base_model_form.html", None, context, status=status)


@login_required
@permission_required("training.add_basemodelprofile", raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def base_model_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, None)


@login_required
@permission_required(CHANGE, raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def base_model_edit(request: HttpRequest, ref: str) -> HttpResponse:
    return _form_page(request, _custom(ref))


@login_required
@permission_required("training.delete_basemodelprofile", raise_exception=True)
@require_POST
def base_model_delete(request: HttpRequest, ref: str) -> HttpResponse:
    base_models.base_model_delete(profile=selectors.base_model_get(ref=ref))
    return redirect_after_post(request, reverse("training:base-model-list"))
