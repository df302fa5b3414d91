#!/usr/bin/env python3
"""Move a Baggintag training bundle: rewrite the absolute paths in its configs.

See docs/export-bundle.md#relocate in the Baggintag repository.

    python3 scripts/relocate.py NEW_ROOT            # from anywhere; the bundle is this file's ../
    python3 scripts/relocate.py NEW_ROOT --bundle DIR

The configs hold absolute paths under the root the bundle was exported for (`session.json`
`export.target_root`); `export.path_files` lists the files that hold them. Each is parsed, every
string equal to the old root or starting with it plus "/" gets the new root, and the file is
written again with the serialisers below, the same ones the exporter used: relocating to R2 gives
the bytes of an export made with target root R2. Standard library only (Python 3.11+): the
exporter copies this very file into every bundle as `scripts/relocate.py`.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def json_line(value: Any) -> str:
    """Compact JSON, non-ASCII kept, shortest round-trip floats (JSONL rows)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_text(value: Any) -> str:
    """A whole .json file: 2-space indent, non-ASCII kept, one final newline."""
    return json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"TOML float must be finite, got {value!r}")
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return toml_float(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(table: dict[str, Any], path: tuple[str, ...], chunks: list[list[str]]) -> list[str]:
    """Scalar lines of `table`; its sub-tables are appended to `chunks` in key order."""
    indent = "  " * max(0, len(path) - 1)
    lines = []
    for key, value in table.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            lines.append(f"{indent}{toml_key(key)} = {toml_value(value)}")
    for key, value in table.items():
        sub = (*path, key)
        name = ".".join(toml_key(k) for k in sub)
        sub_indent = "  " * (len(sub) - 1)
        if isinstance(value, dict):
            chunk = [f"{sub_indent}[{name}]"]
            chunks.append(chunk)
            chunk.extend(_toml_table(value, sub, chunks))
        elif _is_table_array(value):
            for element in value:
                chunk = [f"{sub_indent}[[{name}]]"]
                chunks.append(chunk)
                chunk.extend(_toml_table(element, sub, chunks))
    return lines


def toml_text(data: dict[str, Any], header: list[str] | tuple[str, ...] = ()) -> str:
    """A deterministic TOML document: keys in insertion order (a table's plain keys before its
    sub-tables), floats always with a decimal point, a blank line before every table but the
    first, nested tables indented two spaces per level; `header` lines become `# ` comments."""
    chunks: list[list[str]] = []
    top = _toml_table(data, (), chunks)
    parts = ["\n".join(f"# {line}" for line in header)] if header else []
    body = ["\n".join(top)] if top else []
    body.extend("\n".join(chunk) for chunk in chunks)
    text = "\n".join([*parts, "\n\n".join(body)]) if parts and body else "\n".join(parts + body)
    return text + "\n"


def toml_header(text: str) -> list[str]:
    """The leading `# ` comment lines of a TOML file written by `toml_text`."""
    header = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        header.append(line[2:] if line.startswith("# ") else line[1:])
    return header


def rewrite(value: Any, old: str, new: str) -> Any:
    """`value` with every string equal to `old` or under `old + "/"` moved to `new`."""
    if isinstance(value, str):
        if value == old or value.startswith(old + "/"):
            return new + value[len(old) :]
        return value
    if isinstance(value, dict):
        return {key: rewrite(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite(item, old, new) for item in value]
    return value


def normalise_root(root: str) -> str:
    """`/`-separated, no trailing slash; absolute (POSIX `/…` or Windows `X:/…`)."""
    root = root.replace("\\", "/")
    if len(root) > 1:
        root = root.rstrip("/")
    if not (root.startswith("/") or re.match(r"^[A-Za-z]:/", root)):
        raise ValueError(f"the new root must be an absolute path, got {root!r}")
    if any(ord(c) < 0x20 for c in root) or '"' in root:
        raise ValueError("the new root must not hold control characters or quotes")
    return root


def _rewrite_file(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        out = json_text(rewrite(json.loads(text), old, new))
    elif path.suffix == ".toml":
        out = toml_text(rewrite(tomllib.loads(text), old, new), toml_header(text))
    else:
        raise ValueError(f"{path.name}: only .json and .toml path files can be relocated")
    temp = path.with_name(path.name + ".relocating")
    temp.write_bytes(out.encode("utf-8"))
    os.replace(temp, path)


def relocate(bundle: Path, new_root: str) -> list[str]:
    """Rewrite the bundle's path files and session.json for `new_root`; returns the files changed."""
    new_root = normalise_root(new_root)
    session_path = bundle / "session.json"
    session = json.loads(session_path.read_text(encoding="utf-8"))
    old_root = session["export"]["target_root"]
    if old_root == new_root:
        return []
    files = list(session["export"]["path_files"])
    for name in files:
        _rewrite_file(bundle / name, old_root, new_root)
    _rewrite_file(session_path, old_root, new_root)
    return [*files, "session.json"]


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    bundle = Path(__file__).resolve().parent.parent
    if "--bundle" in argv:
        at = argv.index("--bundle")
        bundle = Path(argv[at + 1])
        args = [a for a in args if a != argv[at + 1]]
    if len(args) != 1:
        sys.stderr.write("usage: relocate.py NEW_ROOT [--bundle DIR]\n")
        return 2
    try:
        changed = relocate(bundle, args[0])
    except (OSError, ValueError, KeyError) as error:
        sys.stderr.write(f"relocate.py: {error}\n")
        return 1
    sys.stdout.write(f"relocated {len(changed)} files\n" if changed else "already at that root\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
