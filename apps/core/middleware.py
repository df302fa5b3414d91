"""Page-side mapping of domain errors (the API has its own handler in apps.core.api), and the
request layer that every page and API request passes: lock-contention retry, JSON 500s on the
API, and the range check of path ids (docs/operations.md#lock-contention, docs/api.md#errors)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.log import log_response

from apps.core.db import CONTENTION_ATTEMPTS, contention_pause, is_contention
from apps.core.exceptions import BusyError, DomainError
from apps.core.ints import int_param

logger = logging.getLogger(__name__)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
_CONTENDED = "_bt_contended"
# Exceptions Django itself answers with a 4xx; everything else escaping a view is a 500.
_CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, DomainError)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _error_page(request: HttpRequest, error: DomainError, status: int) -> HttpResponse:
    template = "partials/_error.html" if getattr(request, "htmx", None) else "error.html"
    return render(request, template, {"error": error}, status=status)


def error_response(request: HttpRequest, error: DomainError, status: int | None = None) -> HttpResponse:
    """The API's JSON error shape under /api/, the error page elsewhere."""
    status = status or error.status_code
    if _is_api(request):
        return JsonResponse(error.as_dict(), status=status)
    return _error_page(request, error, status)


class DomainErrorMiddleware:
    """Render a DomainError escaping a page view as an error page with its status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, DomainError) or _is_api(request):
            return None
        status = exc.status_code if exc.status_code in (403, 404, 409, 413, 415, 503) else 422
        return _error_page(request, exc, status)


def _replayable(request: HttpRequest) -> bool:
    """Whether the request can run again: a write whose body is small and kept in memory.

    Multipart bodies (uploads) are streamed to temporary files once and are not replayed; a
    contention there answers 503 at once. Inside an outer transaction nothing can be retried.
    """
    if request.method in SAFE_METHODS or connection.in_atomic_block:
        return False
    if (request.content_type or "").startswith("multipart/"):
        return False
    try:
        request.body  # noqa: B018  # reads and keeps the body, so each attempt parses it afresh
    except Exception:  # too big, or already streamed: not replayable
        return False
    return True


class RequestGuardMiddleware:
    """The last middleware: every request passes through it.

    * A view whose transaction hit a deadlock or lock timeout (`apps.core.db.is_contention`) runs
      again, up to CONTENTION_ATTEMPTS times. Views call one service, whose transaction the
      database rolled back, so running the view again is running that transaction again. When the
      attempts are spent the answer is 503 `core.busy` (JSON on the API, the error page elsewhere).
    * Any other unhandled exception under /api/ answers 500 in the JSON error shape, logged as
      Django logs a 500 (and `got_request_exception` is sent, as for any 500).
    * Integer path arguments (`/api/media/{id}`, `/items/<int:pk>/`) past INT_MAX answer 400.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        attempts = CONTENTION_ATTEMPTS if _replayable(request) else 1
        for attempt in range(1, attempts + 1):
            setattr(request, _CONTENDED, False)
            response = self.get_response(request)
            if not getattr(request, _CONTENDED) or attempt == attempts:
                return response
            logger.info(
                "%s %s hit lock contention (attempt %s), retrying", request.method, request.path, attempt
            )
            contention_pause(attempt)
        raise AssertionError("unreachable")

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        for name, value in kwargs.items():
            if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
                try:
                    int_param(value, field="id" if name == "pk" else name, minimum=0)
                except DomainError as error:
                    return error_response(request, error)
        return None

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if is_contention(exc):
            setattr(request, _CONTENDED, True)
            logger.warning("%s %s: lock contention (%s)", request.method, request.path, exc)
            response = error_response(request, BusyError())
            response["Retry-After"] = "1"
            return response
        if isinstance(exc, BusyError):
            response = error_response(request, exc)
            response["Retry-After"] = "1"
            return response
        if not _is_api(request) or isinstance(exc, _CLIENT_ERRORS):
            return None
        body = {
            "code": "server_error",
            "message": "Something went wrong on the server. The error was logged; try again, and "
            "tell the administrator if it keeps happening.",
            "details": {},
        }
        response = JsonResponse(body, status=500)
        log_response(
            "%s: %s", "Internal Server Error", request.path, response=response, request=request, exception=exc
        )
        got_request_exception.send(sender=self.__class__, request=request)
        return response
