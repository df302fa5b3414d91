"""Lines sorted by a key with bounded memory: sorted runs spilled to temp files, merged at the end
(metadata.jsonl is sorted by file_name, which is not quite the items' (partition, id) order)."""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

RUN = 20_000


class SortedLines:
    """Collect (key, line) pairs; `close()` writes the lines sorted by key to `path`."""

    def __init__(self, path: Path, run: int = RUN) -> None:
        self.path, self.run = path, run
        self.buffer: list[tuple[str, str]] = []
        self.spills: list[str] = []
        self.count = 0

    def add(self, key: str, line: str) -> None:
        self.buffer.append((key, line))
        self.count += 1
        if len(self.buffer) >= self.run:
            self._spill()

    def _spill(self) -> None:
        self.buffer.sort()
        fd, name = tempfile.mkstemp(prefix="bundle-sort-", suffix=".tsv")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for key, line in self.buffer:
                out.write(f"{key}\t{line}\n")
        self.spills.append(name)
        self.buffer = []

    def _runs(self) -> list[Iterator[tuple[str, str]]]:
        def read(name: str) -> Iterator[tuple[str, str]]:
            with open(name, encoding="utf-8", newline="\n") as fh:
                for raw in fh:
                    key, line = raw.rstrip("\n").split("\t", 1)
                    yield key, line

        self.buffer.sort()
        return [read(n) for n in self.spills] + [iter(self.buffer)]

    def sorted(self) -> Iterator[tuple[str, str]]:
        """The (key, line) pairs in order, read back from the spilled runs; discards them after."""
        try:
            yield from heapq.merge(*self._runs())
        finally:
            self.discard()

    def close(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("w", encoding="utf-8", newline="\n") as out:
                for _, line in heapq.merge(*self._runs()):
                    out.write(line + "\n")
        finally:
            self.discard()

    def discard(self) -> None:
        for name in self.spills:
            os.unlink(name)
        self.spills, self.buffer = [], []


def sorted_listing(
    folder: str, *, keep: Callable[[os.DirEntry[str]], bool] | None = None, run: int = RUN
) -> Iterator[str]:
    """Names in `folder` in byte order of their UTF-8 form, a sub-folder's name ending in "/"
    (so that its files fall where a sort of full paths puts them), `keep` filtering entries.
    Memory is bounded by `run` names however large the folder: a big listing is sorted through
    SortedLines' spilled runs, the names hex-encoded there (hex preserves byte order and holds no
    tab or newline, whatever the file name)."""
    lines = SortedLines(Path(os.devnull), run=run)
    with os.scandir(folder) as it:
        for entry in it:
            if keep is None or keep(entry):
                name = entry.name + "/" if entry.is_dir() else entry.name
                key = name.encode("utf-8", "surrogateescape").hex()
                lines.add(key, "")
    for key, _ in lines.sorted():
        yield bytes.fromhex(key).decode("utf-8", "surrogateescape")
