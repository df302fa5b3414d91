"""Domain errors: raised by services, mapped to HTTP once for the API and the pages."""

from __future__ import annotations

from typing import Any

from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


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


class ServiceUnavailableError(DomainError):
    """A service the request needs (Redis, the broker, the database) is unreachable or busy:
    nothing is wrong with the input, and the same request can be sent again shortly."""

    status_code = 503
    default_code = "core.unavailable"
    default_message = "A service this request needs is unreachable or busy; try again in a minute."


# MariaDB client errors that mean "not now" rather than "wrong": cannot connect, server gone
# away, connection lost. (Deadlocks and lock timeouts are contention: apps/core/db.py retries
# them and answers `core.busy`.)
_DB_UNAVAILABLE_CODES = {2002, 2003, 2006, 2013}


def service_unavailable(exc: BaseException) -> ServiceUnavailableError | None:
    """The 503 (`core.unavailable`) for an outage of Redis, the broker or the database, else
    None (a real bug: a 500)."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return ServiceUnavailableError("The cache (Redis) is unreachable; try again in a minute.")
    if isinstance(exc, BrokerError):
        return ServiceUnavailableError("The job broker (Redis) is unreachable; try again in a minute.")
    if isinstance(exc, OperationalError):
        code = exc.args[0] if exc.args else None
        if code in _DB_UNAVAILABLE_CODES:
            return ServiceUnavailableError("The database is unreachable; try again in a minute.")
    return None
