"""CSV cells that spreadsheets read as text, never as formulas (docs/tags.md#csv-format).

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (CSV injection). Exports prefix such cells with `'`, which the
spreadsheets show as text; imports remove that one `'` again, so an exported file imports back
unchanged.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_escape(value: str) -> str:
    """The cell as written to an export."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_cell_unescape(value: str) -> str:
    """The cell as read from an import (undoes csv_cell_escape)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value
