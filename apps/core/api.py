"""DRF glue shared by every app: the one exception handler."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import BusyError, DomainError
from apps.core.ints import INT_MAX


class IdField(serializers.IntegerField):
    """A row id in a request body: 1 to INT_MAX, so no database sees a value past its columns
    (docs/api.md#integers)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", INT_MAX)
        super().__init__(**kwargs)


def int_field(**kwargs: Any) -> serializers.IntegerField:
    """A whole number in a request body, bounded by default to 0..INT_MAX (docs/api.md#integers)."""
    kwargs.setdefault("min_value", 0)
    kwargs.setdefault("max_value", INT_MAX)
    return serializers.IntegerField(**kwargs)


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(value) for value in detail]
    return str(detail)


def _first_message(fields: Any) -> str:
    if isinstance(fields, dict):
        for key, value in fields.items():
            inner = _first_message(value)
            return inner if key == "non_field_errors" else f"{key}: {inner}"
    if isinstance(fields, list) and fields:
        return _first_message(fields[0])
    return str(fields)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every handled error as {"code", "message", "details"}; unknown errors stay 500."""
    if isinstance(exc, DomainError):
        headers = {"Retry-After": "1"} if isinstance(exc, BusyError) else None
        return Response(exc.as_dict(), status=exc.status_code, headers=headers)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(
            {"code": "invalid", "message": _first_message(fields), "details": {"fields": fields}},
            status=400,
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten(exc.detail)
        if not isinstance(fields, dict):
            fields = {"non_field_errors": fields}
        body = {"code": "invalid", "message": _first_message(fields), "details": {"fields": fields}}
    else:
        detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, drf_exceptions.APIException) else "error"
        body = {
            "code": code if isinstance(code, str) else "error",
            "message": str(detail),
            "details": {},
        }
    response.data = body
    return response
