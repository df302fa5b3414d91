"""Statement-time guard: MariaDB `SET STATEMENT max_statement_time`, SQLite progress handler.
Lock contention: recognising deadlocks and lock timeouts, and running a transaction again.

The guard is used by search and by tag lookups that must not run away
(docs/query-language.md#statement-time-guard); the retry by the request layer
(`apps/core/middleware.py`) and by services (docs/operations.md#lock-contention)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import DatabaseError, OperationalError, connections

from apps.core.exceptions import BusyError, UnprocessableError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class QueryTimeout(UnprocessableError):
    """The statement-time guard stopped a search (HTTP 422)."""

    default_code = "search.query_timeout"

    def __init__(self, *, limit_s: float, term: str = "") -> None:
        costly = f" The costliest term was {term!r}." if term else ""
        super().__init__(
            f"The search took longer than {limit_s:g} s and was stopped.{costly} "
            "Add a rarer tag or a qualifier to narrow it.",
            code="search.query_timeout",
            details={"limit_s": limit_s, "term": term},
        )


ER_STATEMENT_TIMEOUT = 1969
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
CONTENTION_ATTEMPTS = 3  # one transaction, tried at most this often (docs/operations.md#lock-contention)
SQLITE_STEPS = 200  # VM instructions between deadline checks


def _is_timeout(exc: BaseException, vendor: str) -> bool:
    if vendor == "mysql":
        return bool(exc.args) and exc.args[0] == ER_STATEMENT_TIMEOUT
    return "interrupted" in str(exc).lower()


def is_contention(exc: BaseException) -> bool:
    """A deadlock or lock-wait timeout (MariaDB 1213, 1205) or SQLite's "database is locked":
    the transaction was rolled back through no fault of the input and may simply run again."""
    if not isinstance(exc, OperationalError):
        return False
    if exc.args and exc.args[0] in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT):
        return True
    message = str(exc).lower()
    return "database is locked" in message or "database table is locked" in message


def contention_pause(attempt: int) -> None:
    """A short, growing, jittered pause before running a rolled-back transaction again."""
    time.sleep(0.02 * attempt + random.uniform(0, 0.03 * attempt))  # noqa: S311  # not crypto


def contention_retry(
    run: Callable[[], T], *, attempts: int = CONTENTION_ATTEMPTS, using: str = "default"
) -> T:
    """Run `run` (one whole transaction) again after a deadlock or lock timeout, at most
    `attempts` times; then raise BusyError (HTTP 503, `core.busy`).

    Inside an outer transaction nothing can be retried (the database rolled the outer one back),
    so the error is raised as BusyError at once.
    """
    outer = connections[using].in_atomic_block
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except OperationalError as exc:
            if not is_contention(exc):
                raise
            if outer or attempt == attempts:
                raise BusyError() from exc
            logger.info("transaction hit lock contention (attempt %s of %s), retrying", attempt, attempts)
            contention_pause(attempt)
    raise AssertionError("unreachable")


def _mysql_prefix(seconds: float, probes: bool) -> Callable[..., Any]:
    switches = ", optimizer_switch='exists_to_in=off'" if probes else ""
    prefix = f"SET STATEMENT max_statement_time={max(seconds, 0.000001):.6f}{switches} FOR "

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip()[:6].upper() == "SELECT":
            sql = prefix + sql
        return execute(sql, params, many, context)

    return wrapper


@contextmanager
def statement_limit(
    seconds: float, *, term: str = "", using: str = "default", probes: bool = False
) -> Iterator[None]:
    """Run the block's SELECTs under a time limit; a timeout raises QueryTimeout (HTTP 422).

    The connection stays usable afterwards (only the statement is aborted). `probes` keeps
    MariaDB from rewriting EXISTS into IN for these statements: a negated term is then checked
    by a primary-key probe per driving row, as the postings plan intends, where the rewrite materialised
    every row of the excluded tag (`common -common` at 1M items: 1.3 s instead of 1.3 ms). It is
    not the default because a positive OR group gains from the rewrite's semi-join.
    """
    connection = connections[using]
    vendor = connection.vendor
    try:
        if vendor == "mysql":
            with connection.execute_wrapper(_mysql_prefix(seconds, probes)):
                yield
        elif vendor == "sqlite":
            connection.ensure_connection()
            raw = connection.connection
            deadline = time.monotonic() + seconds
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), SQLITE_STEPS)
            try:
                yield
            finally:
                raw.set_progress_handler(None, SQLITE_STEPS)
        else:
            yield
    except DatabaseError as exc:
        if _is_timeout(exc, vendor):
            raise QueryTimeout(limit_s=seconds, term=term) from exc
        raise


def instances_insert(rows: list[Any]) -> None:
    """Insert new model instances of one model so each gets its primary key: one `bulk_create`
    where the database hands back the new ids (MariaDB 10.5+, SQLite 3.35+, PostgreSQL), one
    insert each where it cannot."""
    if not rows:
        return
    if connections[rows[0]._state.db or "default"].features.can_return_rows_from_bulk_insert:
        type(rows[0]).objects.bulk_create(rows)
    else:
        for row in rows:
            row.save()
