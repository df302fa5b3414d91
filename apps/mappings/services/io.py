"""Import and export of mapping sets (docs/mappings.md#import-and-export).

* CSV: `source,target[,target…],action,requires,unless` (a header line is skipped), or the
  two-column `source,target` people already keep;
* kohya's `--tag_replacement` string: `a,b;c,d` (`\\,` and `\\;` escape the separators).

An import is all or nothing: every bad line is reported (line number and what to fix) and then
nothing is saved. Rules are appended by key (source and guards), so importing a file twice
changes nothing; `replace=True` makes the set exactly the file.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from apps.core.exceptions import DomainError
from apps.mappings.models import MappingSet, TagMapping, TagMappingTarget
from apps.mappings.services.rules import (
    ACTIONS,
    RuleInput,
    invalid_error,
    mapping_rules_append,
    mapping_rules_replace,
)
from apps.tags.models import Tag

MAX_BYTES = 20 * 1024 * 1024
HEADER = ("source", "targets…", "action", "requires", "unless")
FORMATS = ("csv", "kohya")


def _text(data: Any) -> str:
    raw = data.read() if hasattr(data, "read") else data
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise DomainError(
                f"The file is larger than {MAX_BYTES // 1024 // 1024} MB.", code="mappings.too_large"
            )
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DomainError("The file is not UTF-8 text.", code="mappings.invalid_import") from exc
    return str(raw)


def csv_parse(text: str) -> list[RuleInput]:
    """CSV lines → rules; DomainError listing every malformed line."""
    rules: list[RuleInput] = []
    errors: list[dict[str, Any]] = []
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DomainError(f"The CSV cannot be read: {exc}.", code="mappings.invalid_import") from exc
    for line, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line == 1 and cells[0].lower() == "source":
            continue
        if len(cells) == 2:
            rules.append(RuleInput(source=cells[0], targets=[cells[1]] if cells[1] else [], line=line))
        elif len(cells) >= 4 and cells[-3].lower() in ACTIONS:
            action = cells[-3].lower()
            targets = [c for c in cells[1:-3] if c]
            rules.append(RuleInput(cells[0], targets, action, cells[-2], cells[-1], line=line))
        else:
            errors.append(
                {
                    "line": line,
                    "message": f"expected source,target or source,target[,target…],action,requires,unless "
                    f"(action one of {', '.join(ACTIONS)}); got {len(cells)} columns.",
                }
            )
    if errors:
        raise invalid_error(errors, "import")
    return rules


def kohya_parse(text: str) -> list[RuleInput]:
    """`a,b;c,d` → map a → b, c → d (an empty target drops the source)."""
    rules: list[RuleInput] = []
    errors: list[dict[str, Any]] = []
    escaped = text.strip().replace("\\;", "\x00").replace("\\,", "\x01")
    for n, pair in enumerate(escaped.split(";"), 1):
        if not pair.strip():
            continue
        parts = pair.split(",")
        if len(parts) != 2 or not parts[0].strip():
            errors.append({"line": n, "message": f"pair {n} ({pair.strip()[:60]!r}) is not source,target."})
            continue
        source, target = (p.replace("\x00", ";").replace("\x01", ",").strip() for p in parts)
        rules.append(RuleInput(source, [target] if target else [], "map" if target else "drop", line=n))
    if errors:
        raise invalid_error(errors, "import")
    return rules


def mapping_set_import(
    *,
    mapping_set: MappingSet,
    data: Any,
    format: str = "csv",
    replace: bool = False,
    create_targets: bool = False,
) -> dict[str, int]:
    """Import rules from CSV or a kohya string; returns {"rules": n, "changed": n, "version": v}."""
    if format not in FORMATS:
        raise DomainError(f"format must be one of {', '.join(FORMATS)}.", code="mappings.invalid_import")
    text = _text(data)
    rules = kohya_parse(text) if format == "kohya" else csv_parse(text)
    write = mapping_rules_replace if replace else mapping_rules_append
    changed = write(mapping_set=mapping_set, rules=rules, create_targets=create_targets)
    return {"rules": len(rules), "changed": changed, "version": mapping_set.version}


def _rows(mapping_set: MappingSet) -> Iterator[tuple[str, list[str], str, str, str]]:
    targets: dict[int, list[int]] = defaultdict(list)
    for mapping_id, tag_id in (
        TagMappingTarget.objects.filter(mapping__mapping_set=mapping_set)
        .order_by("mapping_id", "ord")
        .values_list("mapping_id", "target_tag_id")
    ):
        targets[mapping_id].append(tag_id)
    rules = list(
        TagMapping.objects.filter(mapping_set=mapping_set)
        .order_by("id")
        .values_list("id", "source_tag_id", "action", "requires_tag_id", "unless_tag_id")
    )
    ids = {t for r in rules for t in r[1:] if isinstance(t, int)} | {t for ts in targets.values() for t in ts}
    names = dict(Tag.objects.filter(pk__in=ids).values_list("pk", "name"))
    for rid, source, action, requires, unless in rules:
        yield (
            names[source],
            [names[t] for t in targets.get(rid, ())],
            action,
            names.get(requires or 0, ""),
            names.get(unless or 0, ""),
        )


def mapping_set_export(*, mapping_set: MappingSet, format: str = "csv") -> str:
    """The set as CSV (header `source,targets…,action,requires,unless`) or a kohya string (its
    unguarded map rules with one target, and drops)."""
    if format not in FORMATS:
        raise DomainError(f"format must be one of {', '.join(FORMATS)}.", code="mappings.invalid_export")
    if format == "kohya":
        esc = lambda s: s.replace(",", "\\,").replace(";", "\\;")  # noqa: E731
        pairs = [
            f"{esc(source)},{esc(targets[0] if targets else '')}"
            for source, targets, action, requires, unless in _rows(mapping_set)
            if not requires and not unless and (action == "drop" or (action == "map" and len(targets) == 1))
        ]
        return ";".join(pairs)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "targets", "action", "requires", "unless"])
    for source, targets, action, requires, unless in _rows(mapping_set):
        writer.writerow([source, *(targets or [""]), action, requires, unless])
    return out.getvalue()
