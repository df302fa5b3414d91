"""Implications from CSV into any tag template (docs/tags.md#implications).

Lines are `child,parent` (a `child,parent` header is skipped, `#` lines are comments). Each line
goes through the rules service (`implication_create`, in its own savepoint), so the same checks
apply as on the rules page and the API: both names normalised in the template, no self
implication, activation (for people who may approve rules) refuses cycles and alias conflicts.
Like the tag template import, good lines are kept and each bad one is reported with its line;
a pair that exists already (in any status) counts as existing, so importing twice changes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from apps.core.exceptions import ConflictError, DomainError, PayloadTooLargeError, UnprocessableError
from apps.tags.models import RuleStatus, Vocabulary
from apps.tags.services import rules

MAX_BYTES = 4 * 1024 * 1024
MAX_LINES = 20_000
HEADERS = ("child", "antecedent", "antecedent_name")


@dataclass
class RulesImportResult:
    lines: int = 0
    created: int = 0
    existing: int = 0
    activated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _text(data: Any) -> str:
    raw = data.read(MAX_BYTES + 1) if hasattr(data, "read") else data
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLargeError(
            f"Implication files may be at most {MAX_BYTES // (1024 * 1024)} MiB; split the file.",
            code="tags.import_too_large",
            details={"max_bytes": MAX_BYTES},
        )
    try:
        return bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnprocessableError(
            f"The file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.",
            code="tags.import_encoding",
        ) from exc


def implications_import_csv(
    *, vocabulary: Vocabulary, data: Any, actor: Any = None, activate: bool = False
) -> RulesImportResult:
    """Create the file's `child ⇒ parent` implications in `vocabulary` (pending, or active when
    `activate` and the actor may approve rules); returns counts and the per-line errors."""
    try:
        rows = list(csv.reader(io.StringIO(_text(data), newline="")))
    except csv.Error as exc:
        raise UnprocessableError(f"The CSV cannot be read: {exc}.", code="tags.import_csv") from exc
    if len(rows) > MAX_LINES:
        raise PayloadTooLargeError(
            f"At most {MAX_LINES} lines per implication import; split the file.",
            code="tags.import_too_large",
        )
    result = RulesImportResult()
    for line, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line == 1 and cells[0].lower() in HEADERS:
            continue
        result.lines += 1
        if len(cells) != 2 or not all(cells):
            result.errors.append(
                {"line": line, "message": f"expected child,parent; got {len(cells)} columns."}
            )
            continue
        try:
            with transaction.atomic():
                rule = rules.implication_create(
                    child=cells[0],
                    parent=cells[1],
                    actor=actor,
                    reason="CSV import",
                    activate=activate,
                    vocabulary=vocabulary,
                )
        except ConflictError as err:
            if err.code != "tags.implication_exists":
                result.errors.append({"line": line, "message": err.message})
                continue
            result.existing += 1
        except DomainError as err:
            result.errors.append({"line": line, "message": err.message})
        else:
            result.created += 1
            result.activated += rule.status == RuleStatus.ACTIVE
    return result
