"""Base-model profiles (docs/training.md#base-models): read-only pages; seeded profiles are
shipped with the app and edited nowhere."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from apps.core.htmx import render_page
from apps.training import selectors


@login_required
@require_safe
def base_model_list(request: HttpRequest) -> HttpResponse:
    rows = list(selectors.base_model_list().order_by("kind", "family", "name"))
    return render_page(request, "training/base_model_list.html", None, {"profiles": rows})


@login_required
@require_safe
def base_model_detail(request: HttpRequest, ref: str) -> HttpResponse:
    profile = selectors.base_model_get(ref=ref)
    return render_page(request, "training/base_model_detail.html", None, {"profile": profile})
