"""Shapes of free input shared by the training services (docs/training.md#sessions): text
without control characters, display names, `target_root`, slugs made from names, finite
numbers and rates. Each refusal is a 400 with a `training.*` code and a message naming the fix."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from apps.core.exceptions import DomainError

SLUG = re.compile(r"[a-z][a-z0-9-]{0,39}")
JITTER = ("brightness", "contrast", "saturation", "hue")


def bad(field: str, message: str, code: str = "training.invalid", **details: Any) -> DomainError:
    """A 400 naming the field and what to do about it."""
    return DomainError(f"{field}: {message}", code=code, details={"fields": {field: [message]}, **details})


# --- text ---------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff\u00ad]")
MAX_DEPTH = 8


def text_check(field: str, value: Any, depth: int = 0) -> None:
    """Every string in a (nested) value, keys too, free of NUL and other control characters and
    of lone surrogates: MariaDB refuses some, caption files and launch scripts break on the rest.
    400 `training.bad_text` naming the path."""
    if depth > MAX_DEPTH:
        raise bad(field or "body", f"nested deeper than {MAX_DEPTH} levels.", "training.bad_text")
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found is not None:
            raise bad(
                field or "body",
                f"holds the control character U+{ord(found.group()):04X}; remove it.",
                "training.bad_text",
            )
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            where = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and _CONTROL.search(key):
                raise bad(field or "body", "a key holds a control character; remove it.", "training.bad_text")
            text_check(where, inner, depth + 1)
    elif isinstance(value, list | tuple):
        for n, inner in enumerate(value):
            text_check(f"{field}[{n}]", inner, depth + 1)


def name_check(field: str, value: Any) -> str:
    """A display name: stripped, with a visible character, no bidi overrides (which disguise
    names)."""
    name = (value or "").strip() if isinstance(value, str) else ""
    if not name or not _INVISIBLE.sub("", name):
        raise bad(field, "a name with at least one visible character is needed.")
    if _BIDI.search(name):
        raise bad(field, "remove the right-to-left/left-to-right override characters.", "training.bad_text")
    text_check(field, name)
    return name


def root_check(field: str, value: Any) -> str:
    """`target_root`: absolute (`/…` or `X:/…`), `/`-separated, no `.`/`..` segments, control
    characters or quotes (the bundle writes it into TOML, JSON and launch scripts)."""
    root = (value or "").strip() if isinstance(value, str) else ""
    if not root.startswith("/") and not re.match(r"[A-Za-z]:/", root):
        raise bad(field, "an absolute path with / separators (the bundle's place on the training machine).")
    if "\\" in root:
        raise bad(field, "use / as the separator, on Windows too.")
    if _CONTROL.search(root) or any(c in root for c in '"\n\r\t`$'):
        raise bad(field, "no quotes, $, backquotes or control characters in the path.")
    if any(part in (".", "..") for part in root.split("/")):
        raise bad(field, "no . or .. segments; write the folder's real absolute path.")
    return root.rstrip("/") or "/"


def slug_from(name: str) -> str:
    """The slug made from a name when none is given: `SLUG`'s shape where the name allows."""
    from django.utils.text import slugify

    return re.sub(r"-{2,}", "-", slugify(name).replace("_", "-"))[:40].strip("-")


def derived_slug_check(slug: str, name: str) -> None:
    """A slug made from the name that is not a valid slug: ask for one (the caller gave none)."""
    if not SLUG.fullmatch(slug) or "--" in slug:
        raise bad(
            "slug",
            f"the name {name[:60]!r} gives no usable slug; give a slug (lower-case letters, digits "
            "and single dashes, starting with a letter).",
            "training.bad_slug",
        )


# --- numbers ------------------------------------------------------------------------------------


def finite(field: str, value: Any) -> float:
    """A finite number, else 400 `training.not_finite` (NaN and ±inf never reach the database)."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise bad(field, "a number is needed.", "training.not_finite") from exc
    if not math.isfinite(number):
        raise bad(field, "must be a finite number (not NaN or infinity).", "training.not_finite")
    return number


def rate(field: str, value: Any) -> float:
    """A share in [0, 1): 1 would drop everything."""
    number = finite(field, value)
    if not 0.0 <= number < 1.0:
        raise bad(
            field, f"{number} is outside [0, 1): use 0 for never, below 1 for a share.", "training.bad_rate"
        )
    return number


# --- image policy ---


def jitter_check(raw: Any) -> dict[str, float]:
    """`color_jitter`: strengths 0 to 1 of brightness, contrast, saturation and hue."""
    if not isinstance(raw, Mapping):
        raise bad("color_jitter", "null or an object of strengths.")
    text_check("color_jitter", raw)
    unknown = sorted(str(k)[:40] for k in raw if k not in JITTER)
    if unknown:
        raise bad("color_jitter", f"unknown key(s) {', '.join(map(repr, unknown))}; use {', '.join(JITTER)}.")
    out = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            raise bad(f"color_jitter.{key}", "a number is needed.", "training.not_finite")
        number = finite(f"color_jitter.{key}", value)
        if not 0 <= number <= 1:
            raise bad(f"color_jitter.{key}", f"{number} is outside 0..1.")
        out[key] = number
    return out
