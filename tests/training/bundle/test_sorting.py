"""Bounded-memory sorting of metadata rows (spilled runs merged)."""

from __future__ import annotations

import glob
import tempfile

from apps.training.bundle.sorting import SortedLines, sorted_listing


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


def test_sorted_listing_spills_and_keeps_byte_order(tmp_path):
    """A folder listed with a tiny run size: names in UTF-8 byte order, folders ending in "/",
    odd names (a tab, a newline, non-ASCII) intact, no spill file left behind."""
    before = set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*"))
    folder = tmp_path / "listing"
    folder.mkdir()
    names = ["b.png", "a.txt", "A", "é", "z\ttab", "n\nl", "a-b", "ab", "Ω.caption", "a.b"]
    for name in names:
        (folder / name).write_text(name)
    (folder / "a").mkdir()
    listed = list(sorted_listing(str(folder), run=3))
    expected = sorted([*names, "a/"], key=lambda n: n.encode())
    assert listed == expected
    only_files = list(sorted_listing(str(folder), keep=lambda e: e.is_file(), run=3))
    assert only_files == [n for n in expected if n != "a/"]
    assert set(glob.glob(f"{tempfile.gettempdir()}/bundle-sort-*")) == before
