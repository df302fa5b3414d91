"""The `wd-tagger/` part of a bundle (docs/export-bundle.md#wd-tagger): a flat `images/` folder
(hard links to the written training images), `labels.csv` (one row per image, sorted by file
name) and `selected_tags.csv` in the WD convention. Rows stream through SortedLines; only the
label counts (one per distinct label) are held."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

from apps.training.bundle.errors import BundleError
from apps.training.bundle.images import link_or_copy
from apps.training.bundle.sorting import SortedLines
from apps.training.logic import tagger

FOLDER = "wd-tagger"


def csv_line(values: list[Any]) -> str:
    """One CSV row (RFC 4180 quoting, no line end)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


class TaggerPart:
    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.images = dest / FOLDER / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self.rows = SortedLines(dest / FOLDER / "labels.csv")
        self.counts: Counter[tuple[str, int]] = Counter()
        self.written = 0
        self.categories: Counter[int] = Counter()  # WD category → labels (after finish)

    def add(self, item: Any, source: Path, name: str) -> None:
        """One training image: refuse it without labels (L01), link it once (the same picture in
        two partitions has one stem and the same tags), count its labels, queue its row."""
        found = tagger.labels(item.caption)
        errors = tagger.lint_labels(found, item=item.id)
        if errors:
            raise BundleError(errors)
        if (self.images / name).exists():
            return
        link_or_copy(source, self.images / name)
        self.written += 1
        for key in found:
            self.counts[key] += 1
        self.rows.add(name, csv_line([f"images/{name}", " ".join(n for n, _ in found)]))

    def discard(self) -> None:
        self.rows.discard()

    def finish(self) -> tuple[dict[str, str], list[Any]]:
        """Write labels.csv; return selected_tags.csv (for the writer's file table) and the L18
        warnings."""
        self.rows.add("", "image,tags")  # "" sorts before every file name: the header
        self.rows.close()
        rows = tagger.selected_rows(self.counts)
        self.categories = Counter(category for _, _, category, _ in rows)
        lines = ["tag_id,name,category,count", *(csv_line(list(r)) for r in rows)]
        text = "".join(f"{line}\n" for line in lines)
        return {f"{FOLDER}/selected_tags.csv": text}, tagger.lint_counts(rows)
