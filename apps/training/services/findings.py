"""Lint findings as plain JSON (docs/training.md#lint): `{"id", "severity", "message", "where"}`,
severity `E` (blocks an export) or `W` (reported). Findings from `apps/training/logic/lint.py`
are converted here, whatever their class."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def finding(id: str, severity: str, message: str, where: str = "") -> dict[str, Any]:
    return {"id": id, "severity": severity, "message": message, "where": where}


def as_json(found: Any) -> dict[str, Any]:
    """A logic Finding (dataclass or object), a dict or a string, as a finding dict."""
    if isinstance(found, dict):
        raw = dict(found)
    elif dataclasses.is_dataclass(found) and not isinstance(found, type):
        raw = dataclasses.asdict(found)
    elif isinstance(found, str):
        raw = {"message": found}
    else:
        raw = {
            k: getattr(found, k)
            for k in ("id", "code", "severity", "level", "message", "where", "item", "path")
            if hasattr(found, k)
        }
    severity = str(raw.get("severity") or raw.get("level") or "E")
    severity = "W" if severity.upper().startswith("W") else "E"
    return finding(
        str(raw.get("id") or raw.get("code") or ""),
        severity,
        str(raw.get("message") or ""),
        str(raw.get("where") or "/".join(str(raw[k]) for k in ("item", "path") if raw.get(k))),
    )


def capped(found: Iterable[Any], limit: int) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` findings, errors first, and how many there were."""
    rows = [as_json(f) for f in found]
    rows.sort(key=lambda f: (f["severity"] != "E",))
    return rows[:limit], len(rows)


def errors(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in found if f["severity"] == "E"]
