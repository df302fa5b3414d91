"""File-level checks on a written bundle (docs/export-bundle.md#checks): L10 metadata.jsonl, L12
stems and folder contents, L13 keep files exist, A05 one caption file per renderer and image,
A12 items.jsonl lists every image once with its SHA-256. Returns logic.lint Findings."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apps.training.bundle.context import STEM, load_logic

IMAGE_EXTS = {".png", ".jpg", ".webp"}
CAPTION_EXTS = {".caption", ".txt"}


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

    def folder(self, rel: str, path: Path, renderers: dict[str, str], images: set[str]) -> None:
        """L12 + A05 for one flat folder: stems, extensions, one caption per renderer per image."""
        stems: dict[str, list[str]] = {}
        for entry in os.scandir(path):
            name = entry.name
            stem, ext = os.path.splitext(name)
            if entry.is_dir() or ext not in IMAGE_EXTS | CAPTION_EXTS or not STEM.match(stem):
                self.add("L12", "not an image or caption file with an item stem", path=f"{rel}/{name}")
                continue
            stems.setdefault(stem, []).append(ext)
            if ext in IMAGE_EXTS:
                images.add(f"{rel}/{name}")
        for stem, exts in sorted(stems.items()):
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

    def metadata(self, rel: str, base: Path, expected: set[str]) -> None:
        """L10: relative names, sorted, files exist, each image once, uniform column types."""
        path = self.root / rel
        if not path.exists():
            if expected:
                self.add("L10", "metadata.jsonl is missing", path=rel)
            return
        seen: set[str] = set()
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
                seen.add(name)
        for name in sorted(expected - seen):
            self.add("L10", "image has no metadata.jsonl row", path=f"{rel}: {name}")

    def items(self, images: set[str]) -> None:
        """A12: every image listed once; SHA-256 of the file matches."""
        listed: dict[str, str] = {}
        path = self.root / "items.jsonl"
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                file = record["file"]
                if file in listed:
                    self.add("A12", "image listed twice in items.jsonl", record["id"], file)
                listed[file] = record["sha256"]
        for file in sorted(images - set(listed)):
            self.add("A12", "image not in items.jsonl", path=file)
        names = sorted(listed)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for file, digest in zip(names, pool.map(self._sha256, names), strict=True):
                if digest is None:
                    self.add("A12", "items.jsonl names a missing file", path=file)
                elif digest != listed[file]:
                    self.add("A12", "sha256 differs from items.jsonl", path=file)

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
                self.folder(f"{rel}/{sub}", base / sub, renderers, set())


def check_bundle(root: Path, *, logic: Any = None) -> list[Any]:
    """Run the file-level checks on the bundle at `root`; returns Findings (errors block)."""
    checker = _Checker(root, logic or load_logic())
    renderers = {}
    if "kohya" in checker.targets:
        renderers[".caption"] = "kohya"
    if "onetrainer" in checker.targets:
        renderers[".txt"] = "OneTrainer"
    images: set[str] = set()
    data_images: set[str] = set()
    for rel, path in checker.partition_folders():
        found: set[str] = set()
        checker.folder(rel, path, renderers, found)
        images |= found
        if rel.startswith("data/"):
            data_images |= {name.removeprefix("data/") for name in found}
    if "diffusers" in checker.targets:
        checker.metadata("data/metadata.jsonl", root / "data", data_images)
        dimages = root / "diffusers" / "images"
        if dimages.is_dir():
            expected = {
                f"{p.name}/{f.name}"
                for p in dimages.iterdir()
                if p.is_dir()
                for f in p.iterdir()
                if f.is_file()
            }
            checker.metadata("diffusers/images/metadata.jsonl", dimages, expected)
    elif (root / "data" / "metadata.jsonl").exists():
        checker.add("L10", "metadata.jsonl written without the diffusers target", path="data/metadata.jsonl")
    checker.items(images)
    checker.keep_files()
    checker.ti()
    return checker.findings
