"""The datasets app's interfaces read through selectors (docs/architecture.md): no view or API
module queries a model's manager itself (an empty `.none()` queryset for the router aside)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "apps" / "datasets"
QUERY = re.compile(r"\.objects\.(?!none\(\))")


@pytest.mark.parametrize("folder", ["views", "api"])
def test_interfaces_do_not_query_models(folder: str) -> None:
    found = [
        f"{path.name}:{n}"
        for path in sorted((ROOT / folder).glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if QUERY.search(line)
    ]
    assert found == []
