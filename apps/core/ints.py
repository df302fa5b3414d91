"""Range checks for every integer taken from a request (docs/api.md#integers).

SQLite stores 64-bit integers and raises OverflowError for anything larger; MariaDB's INT columns
(ids, counters, sizes) hold 32 bits. A request's integer is checked here before it reaches a
query, so both databases answer the same 400 naming the field, never a 500 or a silent clamp.
The API's serializer fields and the FilterSets' integer filters are built on these bounds
(`apps/core/filters.py`, `apps/core/api.py`).
"""

from __future__ import annotations

import re
from typing import Any, overload

from apps.core.exceptions import DomainError

INT_MAX = 2_147_483_647  # INT / AutoField ids on MariaDB
BIGINT_MAX = 9_223_372_036_854_775_807  # BIGINT; SQLite's largest integer
_WHOLE = re.compile(r"[+-]?[0-9]{1,40}")


def out_of_range_message(minimum: int | None, maximum: int | None) -> str:
    """The message every range check gives (pages, filters and the API alike)."""
    if minimum is not None and maximum is not None:
        return f"A whole number from {minimum} to {maximum}."
    if minimum is not None:
        return f"A whole number of at least {minimum}."
    return f"A whole number of at most {maximum}."


@overload
def int_param(
    value: Any, *, field: str, minimum: int | None = ..., maximum: int | None = ..., default: int
) -> int: ...
@overload
def int_param(
    value: Any, *, field: str, minimum: int | None = ..., maximum: int | None = ..., default: None = ...
) -> int | None: ...
def int_param(
    value: Any,
    *,
    field: str,
    minimum: int | None = 0,
    maximum: int | None = INT_MAX,
    default: int | None = None,
) -> int | None:
    """`value` (a query, path or body value) as an int within [minimum, maximum].

    Missing or empty gives `default`; anything else that is not a whole number in range raises
    a DomainError (HTTP 400, code `invalid`) whose `details.fields` names `field`.
    """
    if value is None or value == "":
        return default
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    message = out_of_range_message(minimum, maximum)
    if (
        number is None
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        raise DomainError(f"{field}: {message}", code="invalid", details={"fields": {field: [message]}})
    return number
