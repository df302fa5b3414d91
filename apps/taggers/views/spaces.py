"""Embedding space pages: the list with a form for a new space, and a space with its embed
job's progress (docs/taggers.md#pages)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.core.exceptions import DomainError
from apps.core.htmx import redirect_after_post, render_page
from apps.taggers.engine.clip import DEFAULT_RESIZE_MODE, RESIZE_MODES
from apps.taggers.selectors import spaces as selectors
from apps.taggers.services import spaces

ADD = "taggers.add_embeddingspace"
CHANGE = "taggers.change_embeddingspace"


class SpaceForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="e.g. open_clip:ViT-B-32/laion2b")
    model_ref = forms.CharField(
        max_length=500,
        label="Model",
        help_text="local-dir:open_clip/<name> (see `manage.py models provision`)",
    )
    resize_mode = forms.ChoiceField(choices=[(m, m) for m in RESIZE_MODES], initial=DEFAULT_RESIZE_MODE)
    description = forms.CharField(max_length=2000, required=False)


class EmbedForm(forms.Form):
    query = forms.CharField(max_length=2000, required=False, help_text="a search query; empty = every image")


def _need(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


@login_required
def space_list(request: HttpRequest) -> HttpResponse:
    """Every space with its vector count and embed progress; a form for a new one."""
    form = SpaceForm(request.POST or None)
    if request.method == "POST":
        _need(request, ADD)
        if form.is_valid():
            try:
                created = spaces.space_create(**form.cleaned_data)
            except DomainError as err:
                form.add_error(None, err.message)
            else:
                return redirect_after_post(request, reverse("taggers:space-detail", args=[created.pk]))
    context = {"spaces": selectors.space_list()[:200], "form": form}
    return render_page(request, "taggers/space_list.html", None, context, status=422 if form.errors else 200)


@login_required
@require_safe
def space_detail(request: HttpRequest, pk: int) -> HttpResponse:
    space = selectors.space_get(space_id=pk)
    context = {"space": space, "job": space.embed_job, "form": EmbedForm()}
    return render_page(request, "taggers/space_detail.html", None, context)


@login_required
@require_POST
def space_embed(request: HttpRequest, pk: int) -> HttpResponse:
    """Start (or show the running) embed job; its progress polls on the space's page."""
    _need(request, CHANGE)
    space = selectors.space_get(space_id=pk)
    form = EmbedForm(request.POST)
    if form.is_valid():
        try:
            spaces.space_embed(space=space, query=form.cleaned_data["query"], actor=request.user)
        except DomainError as err:
            form.add_error(None, err.message)
        else:
            return redirect_after_post(request, reverse("taggers:space-detail", args=[space.pk]))
    context = {"space": space, "job": space.embed_job, "form": form}
    return render_page(request, "taggers/space_detail.html", None, context, status=422)
