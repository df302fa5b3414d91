"""The bundle writer's error: the findings that block an export (docs/export-bundle.md#checks)."""

from __future__ import annotations

from typing import Any

from apps.core.exceptions import UnprocessableError


class BundleError(UnprocessableError):
    default_code = "training.bundle_invalid"
    default_message = "The bundle could not be written."

    def __init__(self, findings: list[Any]) -> None:
        self.findings = list(findings)
        shown = "; ".join(_line(f) for f in self.findings[:5])
        more = f" (and {len(self.findings) - 5} more)" if len(self.findings) > 5 else ""
        super().__init__(
            f"The bundle could not be written: {shown}{more}. Fix the items named and export again.",
            details={"findings": [_as_dict(f) for f in self.findings]},
        )


def _as_dict(f: Any) -> dict[str, Any]:
    return {k: getattr(f, k, None) for k in ("code", "severity", "message", "item", "path")}


def _line(f: Any) -> str:
    where = " ".join(str(x) for x in (getattr(f, "item", None), getattr(f, "path", None)) if x)
    return f"{getattr(f, 'code', '?')} {where + ': ' if where else ''}{getattr(f, 'message', f)}"


def finding(
    ctx_or_logic: Any, code: str, message: str, item: str | None = None, path: str | None = None
) -> Any:
    """An error Finding of the logic's lint module."""
    logic = getattr(ctx_or_logic, "logic", ctx_or_logic)
    return logic.lint.Finding(code, "error", message, item=item, path=path)
