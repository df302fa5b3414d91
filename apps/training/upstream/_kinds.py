"""Value kinds shared by the kohya and OneTrainer schema modules (docs/export-upstream.md).

Kinds: bool, int (not a bool), float (float only), number (int or float), str, enum (a member
name, as a string), dict, config (a nested config object), list, reso (int or [int, int]),
float2 ([float, float]); a trailing `?` also allows null.
"""

from __future__ import annotations

from typing import Any


def names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def typed(text: str) -> dict[str, str]:
    """`name:kind name:kind …` → {name: kind}, in order."""
    return dict(item.split(":", 1) for item in text.split())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def kind_problem(value: Any, kind: str) -> str | None:
    """Why `value` is not of `kind`, or None."""
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": _is_int,
        "float": _is_float,
        "number": lambda v: _is_int(v) or _is_float(v),
        "str": lambda v: isinstance(v, str),
        "enum": lambda v: isinstance(v, str),
        "dict": lambda v: isinstance(v, dict),
        "config": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        "reso": lambda v: _is_int(v) or (isinstance(v, list) and len(v) == 2 and all(map(_is_int, v))),
        "float2": lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_float, v)),
    }[kind](value)
    if ok:
        return None
    wanted = {
        "bool": "a boolean (true/false)",
        "int": "an integer",
        "float": "a float (write 0.0, not 0)",
        "number": "a number",
        "str": "a string",
        "enum": "a string",
        "dict": "a table (object)",
        "config": "an object",
        "list": "a list",
        "reso": "an integer or [width, height] integers",
        "float2": "a pair of floats",
    }[kind]
    return f"must be {wanted}, not {value!r}"
