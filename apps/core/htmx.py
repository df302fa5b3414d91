"""Rendering helpers for pages that htmx swaps in part."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django_htmx.http import HttpResponseClientRedirect


def render_page(
    request: HttpRequest,
    template: str,
    partial: str | None,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    """The partial for htmx swaps (not boosted navigation), the whole page otherwise."""
    htmx = getattr(request, "htmx", None)
    if partial and htmx and not htmx.boosted:
        return render(request, partial, context, status=status)
    return render(request, template, context, status=status)


def redirect_after_post(request: HttpRequest, url: str) -> HttpResponse:
    """HX-Redirect for htmx, 303 See Other otherwise."""
    if getattr(request, "htmx", None):
        return HttpResponseClientRedirect(url)
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response
