"""A14 for the lint ids the file checks report (L10, L12): each failing fixture, a written bundle
with one file broken, reports exactly its id, and the bundle as written reports no error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.training.bundle.check import check_bundle, is_error


def _metadata_drop_row(root: Path) -> None:
    meta = root / "data/metadata.jsonl"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[1:]))


def _metadata_absolute_name(root: Path) -> None:
    meta = root / "data/metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    rows[0]["file_name"] = str(root / "data" / rows[0]["file_name"])
    meta.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _stray_file_in_a_partition(root: Path) -> None:
    (root / "data/mychar--flip/notes.md").write_text("x")


def _stray_file_in_ti_images(root: Path) -> None:
    folder = next((root / "ti").glob("*/images"))
    (folder / "readme.txt").write_text("x")


@pytest.mark.parametrize(
    ("breaks", "code", "fields"),
    [
        (_metadata_drop_row, "L10", {"mirror": "per_item"}),
        (_metadata_absolute_name, "L10", {"mirror": "per_item"}),
        (_stray_file_in_a_partition, "L12", {"mirror": "per_item"}),
        (_stray_file_in_ti_images, "L12", {"ti": True}),
    ],
)
def test_a_broken_file_reports_exactly_its_id(
    make_plan, export, logic, breaks: Callable[[Path], None], code: str, fields: dict
) -> None:
    root = export(make_plan(**fields))
    assert [f for f in check_bundle(root, logic=logic) if is_error(f)] == []
    breaks(root)
    assert {f.code for f in check_bundle(root, logic=logic) if is_error(f)} == {code}
