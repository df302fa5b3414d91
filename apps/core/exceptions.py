"""Domain errors: raised by services, mapped to HTTP once for the API and the pages."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the domain was broken by the input; the caller can fix it."""

    status_code = 400
    default_code = "invalid"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFoundError(DomainError):
    status_code = 404
    default_code = "not_found"
    default_message = "Not found."


class ForbiddenError(DomainError):
    status_code = 403
    default_code = "forbidden"
    default_message = "You do not have permission to do that."


class ConflictError(DomainError):
    status_code = 409
    default_code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLargeError(DomainError):
    status_code = 413
    default_code = "too_large"
    default_message = "The input is too large."


class UnsupportedMediaError(DomainError):
    status_code = 415
    default_code = "unsupported_type"
    default_message = "This kind of file is not supported."


class UnprocessableError(DomainError):
    status_code = 422
    default_code = "unprocessable"
    default_message = "The input could not be processed."


class BusyError(DomainError):
    """The database kept answering deadlock or lock timeout after the retries; try again later."""

    status_code = 503
    default_code = "core.busy"
    default_message = (
        "The library is busy with other edits to the same rows and this change was not saved. "
        "Try again in a moment."
    )


class TransientError(Exception):
    """A failure worth retrying (network blip, lock timeout); never a user's fault."""
