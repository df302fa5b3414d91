"""Bounded-memory sorting of metadata rows (spilled runs merged)."""

from __future__ import annotations

import glob
import tempfile

from apps.training.bundle.sorting import SortedLines


def test_spilled_runs_merge_in_key_order(tmp_path):
    before = set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*"))
    lines = SortedLines(tmp_path / "out.jsonl", run=3)
    keys = ["p/ib.png", "p/ia.png", "p/ia-m.png", "p--x/ic.png", "p/id.jpg", "p-q/ie.png", "p/ia.jpg"]
    for key in keys:
        lines.add(key, f'{{"file_name":"{key}"}}')
    assert len(lines.spills) == 2
    lines.close()
    written = (tmp_path / "out.jsonl").read_text().splitlines()
    assert written == [f'{{"file_name":"{k}"}}' for k in sorted(keys)]
    assert set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*")) == before
