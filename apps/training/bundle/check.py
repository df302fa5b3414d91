"""File-level checks on a written bundle (docs/export-bundle.md#checks): L10 metadata.jsonl, L12
stems and folder contents, L13 keep files exist, A05 one caption file per renderer and image,
A12 items.jsonl lists every image once with its SHA-256. Returns logic.lint Findings.

Memory stays flat with the bundle size: folders are listed one at a time in sorted order, and
items.jsonl / metadata.jsonl names go through SortedLines (spilled runs) so that each comparison
is a merge of two sorted streams; a folder's listing is sorted through spilled runs too, so no
listing is held whole however many files a partition has."""

from __future__ import annotations

import collections
import csv
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apps.training.bundle.context import STEM, load_logic
from apps.training.bundle.sorting import SortedLines, sorted_listing

IMAGE_EXTS = {".png", ".jpg", ".webp"}
CAPTION_EXTS = {".caption", ".txt"}
UNSORTABLE = ("\t", "\n", "\r")  # a name holding one cannot go through SortedLines


def _subfolders(base: Path) -> list[os.DirEntry[str]]:
    """Folders in `base`, in the order a sort of their full `name/...` paths puts their files."""
    with os.scandir(base) as it:
        return sorted((e for e in it if e.is_dir()), key=lambda e: e.name + "/")


def _files(folder: str, *, plain: bool = False) -> Iterator[str]:
    """Names in `folder` that are not folders (only regular files if `plain`), sorted; memory
    bounded however many files the folder holds (sorting.sorted_listing)."""
    return sorted_listing(folder, keep=lambda e: e.is_file() if plain else not e.is_dir())


def _image_name(name: str) -> bool:
    stem, ext = os.path.splitext(name)
    return ext in IMAGE_EXTS and bool(STEM.match(stem))


def _compare(file: str, expected: str, digest: Future[str | None]) -> list[tuple[str, str]]:
    found = digest.result()
    if found is None:
        return [(file, "items.jsonl names a missing file")]
    return [(file, "sha256 differs from items.jsonl")] if found != expected else []


def _unique(pairs: Iterable[tuple[str, str]]) -> Iterator[str]:
    return (key for key, _ in itertools.groupby(pairs, key=lambda pair: pair[0]))


def _missing(expected: Iterable[str], present: Iterable[str]) -> Iterator[str]:
    """Names of sorted `expected` absent from sorted, repeat-free `present` (a merge)."""
    others = iter(present)
    current = next(others, None)
    for name in expected:
        while current is not None and current < name:
            current = next(others, None)
        if current != name:
            yield name


def is_error(finding: Any) -> bool:
    return str(getattr(finding, "severity", "")).lower() in ("error", "e")


class _Checker:
    def __init__(self, root: Path, logic: Any) -> None:
        self.root, self.logic = root, logic
        self.findings: list[Any] = []
        self.session = json.loads((root / "session.json").read_text(encoding="utf-8"))
        self.targets = set(self.session["targets"])

    def add(self, code: str, message: str, item: str | None = None, path: str | None = None) -> None:
        self.findings.append(self.logic.lint.Finding(code, "error", message, item=item, path=path))

    def partition_folders(self) -> Iterator[tuple[str, Path]]:
        for top in ("data", "reg"):
            base = self.root / top
            if base.is_dir():
                for entry in sorted(os.scandir(base), key=lambda e: e.name):
                    if entry.is_dir():
                        yield f"{top}/{entry.name}", Path(entry.path)
                    elif not (top == "data" and entry.name == "metadata.jsonl"):
                        self.add("L12", "only partition folders belong here", path=f"{top}/{entry.name}")

    def images(self, tops: Iterable[str] = ("data", "reg")) -> Iterator[str]:
        """Image files of the partition folders (those folder() accepts), relative, sorted."""
        for top in tops:
            base = self.root / top
            if base.is_dir():
                for entry in _subfolders(base):
                    for name in _files(entry.path):
                        if _image_name(name):
                            yield f"{top}/{entry.name}/{name}"

    def folder(self, rel: str, path: Path, renderers: dict[str, str]) -> None:
        """L12 + A05 for one flat folder: stems, extensions, one caption per renderer per image."""
        names = sorted_listing(str(path))  # sorted, bounded memory: a folder's entry ends in "/"

        def valid() -> Iterator[tuple[str, str]]:
            for name in names:
                stem, ext = os.path.splitext(name)
                if ext not in IMAGE_EXTS | CAPTION_EXTS or not STEM.match(stem):
                    path = f"{rel}/{name.removesuffix('/')}"
                    self.add("L12", "not an image or caption file with an item stem", path=path)
                    continue
                yield stem, ext

        # An item stem has a fixed form, so its files (`stem.ext`) sit next to each other.
        for stem, group in itertools.groupby(valid(), key=lambda pair: pair[0]):
            exts = [ext for _, ext in group]
            pictures = [e for e in exts if e in IMAGE_EXTS]
            if len(pictures) > 1:
                self.add("A05", "two images share a stem (and its caption files)", stem, rel)
            for ext, renderer in renderers.items():
                if pictures and ext not in exts:
                    self.add("A05", f"no {ext} caption ({renderer})", stem, f"{rel}/{stem}{pictures[0]}")
                if not pictures and ext in exts:
                    self.add("A05", f"{ext} caption without its image", stem, f"{rel}/{stem}{ext}")
            stray = {e for e in exts if e in CAPTION_EXTS} - set(renderers)
            for ext in sorted(stray):
                self.add("A05", f"{ext} caption no renderer reads here", stem, f"{rel}/{stem}{ext}")

    def metadata(self, rel: str, base: Path, expected: Iterable[str]) -> None:
        """L10: relative names, sorted, files exist, each image once, uniform column types.
        `expected`: the names that need a row, sorted."""
        path = self.root / rel
        if not path.exists():
            if next(iter(expected), None) is not None:
                self.add("L10", "metadata.jsonl is missing", path=rel)
            return
        seen = SortedLines(path)
        kinds: dict[str, str] | None = None
        previous = ""
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                row = json.loads(line)
                name = row.get("file_name", "")
                if (
                    not isinstance(name, str)
                    or name.startswith("/")
                    or ".." in name.split("/")
                    or "://" in name
                ):
                    self.add("L10", f"line {number}: file_name must be relative", path=rel)
                    continue
                if name <= previous:
                    self.add("L10", f"line {number}: rows not sorted by file_name or repeated", path=rel)
                previous = name
                row_kinds = {k: type(v).__name__ for k, v in row.items()}
                if kinds is None:
                    kinds = row_kinds
                elif row_kinds != kinds:
                    self.add("L10", f"line {number}: columns or their types differ from line 1", path=rel)
                if not (base / name).is_file():
                    self.add("L10", f"line {number}: {name} does not exist", path=rel)
                if not any(c in name for c in UNSORTABLE):
                    seen.add(name, "")
        for name in _missing(expected, _unique(seen.sorted())):
            self.add("L10", "image has no metadata.jsonl row", path=f"{rel}: {name}")

    def items(self, images: Iterable[str]) -> None:
        """A12: every image listed once; SHA-256 of the file matches. `images`: sorted."""
        listed = SortedLines(self.root / "items.jsonl")
        twice: list[tuple[str, str]] = []
        with (self.root / "items.jsonl").open(encoding="utf-8") as fh:
            for number, line in enumerate(fh):
                record = json.loads(line)
                file, item, digest = record["file"], record["id"], record["sha256"]
                if any(c in f"{file}{item}{digest}" for c in UNSORTABLE):
                    self.add("A12", "items.jsonl names a missing file", item, file)
                    continue
                listed.add(file, f"{number:012d}\t{item}\t{digest}")
        absent: list[str] = []
        hashes: list[tuple[str, str]] = []
        pending: collections.deque[tuple[str, str, Future[str | None]]] = collections.deque()
        others = iter(images)
        image = next(others, None)
        workers = os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for file, group in itertools.groupby(listed.sorted(), key=lambda pair: pair[0]):
                records = [line.split("\t", 2) for _, line in group]
                twice += [(item, file) for _, item, _ in records[1:]]
                while image is not None and image < file:
                    absent.append(image)
                    image = next(others, None)
                if image == file:
                    image = next(others, None)
                pending.append((file, records[-1][2], pool.submit(self._sha256, file)))
                if len(pending) >= workers * 4:
                    hashes += _compare(*pending.popleft())
            while pending:
                hashes += _compare(*pending.popleft())
        while image is not None:
            absent.append(image)
            image = next(others, None)
        for item, file in twice:
            self.add("A12", "image listed twice in items.jsonl", item, file)
        for file in absent:
            self.add("A12", "image not in items.jsonl", path=file)
        for file, message in hashes:
            self.add("A12", message, path=file)

    def _sha256(self, rel: str) -> str | None:
        try:
            with open(self.root / rel, "rb") as fh:
                return hashlib.file_digest(fh, "sha256").hexdigest()
        except FileNotFoundError:
            return None

    def keep_files(self) -> None:
        """L13: every keep file a concept names exists."""
        root = self.session["export"]["target_root"]
        for rel in ("onetrainer/concepts.json",):
            path = self.root / rel
            if not path.exists():
                continue
            for concept in json.loads(path.read_text(encoding="utf-8")):
                keep = concept["text"]["tag_dropout_special_tags"]
                if keep and not (
                    keep.startswith(root + "/") and (self.root / keep[len(root) + 1 :]).is_file()
                ):
                    self.add("L13", "keep file missing", path=keep)

    def wd_tagger(self) -> None:
        """L12: `wd-tagger/images/` holds item images only; L10: `labels.csv` lists each of them
        once, sorted, with labels; `selected_tags.csv` has one row per label used, in WD order,
        `tag_id` = row index, `count` = the images carrying it (docs/export-bundle.md#wd-tagger)."""
        if "wd-tagger" not in self.targets:
            return
        base = self.root / "wd-tagger"
        files = (
            (n for n in _files(str(base / "images")) if self._tagger_image(n))
            if (base / "images").is_dir()
            else iter(())
        )
        counts: collections.Counter[str] = collections.Counter()
        rows = self._tagger_rows(base / "labels.csv", "image,tags")
        seen = SortedLines(Path(os.devnull))
        previous = ""
        for number, row in rows:
            if len(row) != 2 or not row[0].startswith("images/") or "/" in row[0][7:] or row[0] == "images/":
                self.add(
                    "L10", f"line {number}: expected images/<file>,<labels>", path="wd-tagger/labels.csv"
                )
                continue
            name, labels = row[0].removeprefix("images/"), row[1].split(" ")
            if name <= previous:
                self.add(
                    "L10", f"line {number}: rows not sorted by image or repeated", path="wd-tagger/labels.csv"
                )
            previous = name
            if not (base / "images" / name).is_file():
                self.add("L10", f"line {number}: {name} does not exist", path="wd-tagger/labels.csv")
            if not all(labels) or len(set(labels)) != len(labels):
                self.add("L10", f"line {number}: empty or repeated label", path="wd-tagger/labels.csv")
            counts.update(set(labels) - {""})
            if not any(c in name for c in UNSORTABLE):
                seen.add(name, "")
        for name in _missing(files, _unique(seen.sorted())):
            self.add("L10", "image has no labels.csv row", path=f"wd-tagger/images/{name}")
        order: list[tuple[bool, int, int, str]] = []
        for number, row in self._tagger_rows(base / "selected_tags.csv", "tag_id,name,category,count"):
            try:
                tag_id, name, category, count = int(row[0]), row[1], int(row[2]), int(row[3])
            except (ValueError, IndexError):
                self.add(
                    "L10",
                    f"line {number}: expected tag_id,name,category,count",
                    path="wd-tagger/selected_tags.csv",
                )
                continue
            if tag_id != number - 2 or counts.pop(name, None) != count:
                self.add(
                    "L10",
                    f"line {number}: tag_id or count of {name!r} wrong",
                    path="wd-tagger/selected_tags.csv",
                )
            order.append((category != 9, category, -count, name))
        if order != sorted(order):
            self.add(
                "L10", "rows not in WD order (ratings, category, count)", path="wd-tagger/selected_tags.csv"
            )
        for name in sorted(counts):
            self.add("L10", f"label {name!r} of labels.csv has no row", path="wd-tagger/selected_tags.csv")

    def _tagger_image(self, name: str) -> bool:
        if _image_name(name):
            return True
        self.add("L12", "wd-tagger/images/ holds item images only", path=f"wd-tagger/images/{name}")
        return False

    def _tagger_rows(self, path: Path, header: str) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of a CSV whose first line must be `header`; streamed."""
        rel = f"wd-tagger/{path.name}"
        if not path.is_file():
            self.add("L10", "missing", path=rel)
            return
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            if next(reader, None) != header.split(","):
                self.add("L10", f"the header must be {header}", path=rel)
            yield from enumerate(reader, 2)

    def ti(self) -> None:
        ti = self.session.get("textual_inversion")
        if not ti:
            return
        base = self.root / "ti" / ti["token"]
        rel = f"ti/{ti['token']}"
        for entry in os.scandir(base / "images") if (base / "images").is_dir() else ():
            if os.path.splitext(entry.name)[1] not in IMAGE_EXTS:
                self.add("L12", "ti images/ holds images only", path=f"{rel}/images/{entry.name}")
        for sub, renderers in (
            ("captioned", {".caption": "kohya TI", ".txt": "A1111"}),
            ("onetrainer", {".txt": "OneTrainer"}),
        ):
            if (base / sub).is_dir():
                self.folder(f"{rel}/{sub}", base / sub, renderers)


def check_bundle(root: Path, *, logic: Any = None) -> list[Any]:
    """Run the file-level checks on the bundle at `root`; returns Findings (errors block)."""
    checker = _Checker(root, logic or load_logic())
    renderers = {}
    if "kohya" in checker.targets:
        renderers[".caption"] = "kohya"
    if "onetrainer" in checker.targets:
        renderers[".txt"] = "OneTrainer"
    for rel, path in checker.partition_folders():
        checker.folder(rel, path, renderers)
    if "diffusers" in checker.targets:
        data_images = (name.removeprefix("data/") for name in checker.images(("data",)))
        checker.metadata("data/metadata.jsonl", root / "data", data_images)
        dimages = root / "diffusers" / "images"
        if dimages.is_dir():
            expected = (
                f"{p.name}/{name}" for p in _subfolders(dimages) for name in _files(p.path, plain=True)
            )
            checker.metadata("diffusers/images/metadata.jsonl", dimages, expected)
    elif (root / "data" / "metadata.jsonl").exists():
        checker.add("L10", "metadata.jsonl written without the diffusers target", path="data/metadata.jsonl")
    checker.items(checker.images())
    checker.keep_files()
    checker.ti()
    checker.wd_tagger()
    return checker.findings
