"""House limits: no module of apps/ over 600 lines, no function over 100 (docs/architecture.md).

Run: python scripts/sizes.py  (exit 1 and a list when something is over)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODULE_MAX, FUNCTION_MAX = 600, 100


def main() -> int:
    over = []
    for path in sorted(Path("apps").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        lines = text.count("\n")
        if lines > MODULE_MAX:
            over.append(f"{path}: {lines} lines (module limit {MODULE_MAX})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_MAX:
                    over.append(
                        f"{path}:{node.lineno} {node.name}: {length} lines (function limit {FUNCTION_MAX})"
                    )
    sys.stdout.write(("\n".join(over) or "sizes: every module and function within limits") + "\n")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
