"""Page-side mapping of domain errors (the API has its own handler in apps.core.api)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.exceptions import DomainError, service_unavailable


class DomainErrorMiddleware:
    """Render a DomainError escaping a page view as an error page with its status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/"):
            return None
        if not isinstance(exc, DomainError):
            outage = service_unavailable(exc)
            if outage is None:
                return None
            exc = outage
        status = exc.status_code if exc.status_code in (403, 404, 409, 413, 415, 503) else 422
        template = "partials/_error.html" if getattr(request, "htmx", None) else "error.html"
        return render(request, template, {"error": exc}, status=status)
