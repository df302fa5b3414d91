"""The sign-in page, throttled like the token endpoint (docs/api.md#authentication), and the 404
handler that keeps the API's JSON error shape (docs/api.md#errors)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found

from apps.core.exceptions import DomainError

logger = logging.getLogger(__name__)

LOGIN_ATTEMPTS_PER_MINUTE = 20  # per client address; the same rate as POST /api/auth/token
WINDOW_S = 60


def _login_allowed(request: HttpRequest) -> bool:
    """Count this attempt in the client's one-minute window; False once past the rate.

    The count lives in the cache. If the cache cannot be reached the attempt is allowed (and
    logged): signing in must keep working when Redis is down.
    """
    key = f"login-attempts:{request.META.get('REMOTE_ADDR', '')}"
    try:
        cache.add(key, 0, timeout=WINDOW_S)
        attempts = cache.incr(key)
    except Exception:  # the cache is down or the key expired in between
        logger.warning("login throttle: cache unavailable, attempt allowed", exc_info=True)
        return True
    return int(attempts) <= LOGIN_ATTEMPTS_PER_MINUTE


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView; more than LOGIN_ATTEMPTS_PER_MINUTE POSTs a minute from one address
    answer 429 with the sign-in page and a Retry-After header."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _login_allowed(request):
            error = DomainError(
                "Too many sign-in attempts from your address. Wait a minute and try again.",
                code="auth.throttled",
            )
            response = render(request, "error.html", {"error": error}, status=429)
            response["Retry-After"] = str(WINDOW_S)
            return response
        return super().post(request, *args, **kwargs)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the API's JSON error shape under /api/ (a URL no route matches), the 404 page
    elsewhere."""
    if request.path.startswith("/api/"):
        body = {"code": "not_found", "message": f"No API endpoint at {request.path}.", "details": {}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
