"""A deterministic zip of a bundle folder, streamed as bytes chunks (docs/export-bundle.md#zip).

Entries sorted by name, mtime 1980-01-01 00:00, modes 0644 (0755 for .sh/.py), UTF-8 names, text
deflated at a fixed level, images stored. Each entry is read twice from disk (CRC and size
first, then the data) so that local headers carry real values (no data descriptors) and nothing
larger than one read chunk is held: the zip itself is never built in memory or on disk. Entries come
lazily from a sorted walk (a large folder's names sorted through spilled runs); the central
directory, packed bytes appended per entry (~50 bytes + the name), goes to an anonymous temp file
past 4 MiB, so memory stays constant in the number of files. ZIP64 records appear only where a size, an
offset or the entry count needs them. Same files ⇒ same bytes (A06)."""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from apps.training.bundle.sorting import sorted_listing

CHUNK = 1 << 20
SPILL = 4 << 20  # central-directory bytes kept in memory before they go to a temp file
LEVEL = 6
DOS_DATE, DOS_TIME = (0 << 9) | (1 << 5) | 1, 0  # 1980-01-01 00:00:00
TEXT = {".json", ".jsonl", ".toml", ".txt", ".caption", ".md", ".sh", ".ps1", ".py"}
EXEC = {".sh", ".py"}
LIMIT = 0xFFFFFFFF
MAX_ENTRIES = 0xFFFF  # more entries need the ZIP64 end records
FLAGS = 0x0800  # UTF-8 names


@dataclass
class _Entry:
    name: bytes
    path: Path
    method: int
    mode: int
    crc: int = 0
    size: int = 0
    compressed: int = 0
    offset: int = 0


def _compressor() -> zlib._Compress:
    return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)


def _data(entry: _Entry) -> Iterator[bytes]:
    compressor = _compressor() if entry.method == 8 else None
    with open(entry.path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            out = compressor.compress(chunk) if compressor else chunk
            if out:
                yield out
    if compressor:
        tail = compressor.flush()
        if tail:
            yield tail


def _measure(entry: _Entry) -> None:
    crc, size = 0, 0
    with open(entry.path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    entry.crc, entry.size = crc, size
    entry.compressed = size if entry.method == 0 else sum(len(b) for b in _data(entry))


def _sorted_files(folder: str, rel: str) -> Iterator[tuple[str, str]]:
    """(relative name, path) of every file under `folder`, in byte order of the relative name.
    A sub-folder sorts as `name/` so that its files fall where a sort of full names puts them;
    links to folders are skipped (as os.walk does). Memory per open level is bounded however many
    files a folder holds (sorting.sorted_listing)."""
    for name in sorted_listing(folder, keep=lambda e: not (e.is_dir() and e.is_symlink())):
        if name.endswith("/"):
            yield from _sorted_files(os.path.join(folder, name[:-1]), rel + name)
        else:
            yield rel + name, os.path.join(folder, name)


def entries(root: Path, prefix: str = "") -> Iterator[_Entry]:
    """Every file under `root`, sorted by its name in the zip, produced lazily."""
    for rel, path in _sorted_files(str(root), prefix):
        ext = os.path.splitext(rel)[1].lower()
        mode = 0o100755 if ext in EXEC else 0o100644
        yield _Entry(rel.encode("utf-8"), Path(path), 8 if ext in TEXT else 0, mode)


def _local(entry: _Entry) -> bytes:
    big = entry.size >= LIMIT or entry.compressed >= LIMIT
    extra = struct.pack("<HHQQ", 1, 16, entry.size, entry.compressed) if big else b""
    sizes = (LIMIT, LIMIT) if big else (entry.compressed, entry.size)
    head = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        45 if big else 20,
        FLAGS,
        entry.method,
        DOS_TIME,
        DOS_DATE,
        entry.crc,
        sizes[0],
        sizes[1],
        len(entry.name),
        len(extra),
    )
    return head + entry.name + extra


def _central(entry: _Entry) -> bytes:
    values, fields = [], []
    size = compressed = offset = 0
    for value, slot in ((entry.size, "size"), (entry.compressed, "compressed"), (entry.offset, "offset")):
        if value >= LIMIT:
            values.append(value)
            fields.append(slot)
    size = LIMIT if "size" in fields else entry.size
    compressed = LIMIT if "compressed" in fields else entry.compressed
    offset = LIMIT if "offset" in fields else entry.offset
    extra = (
        struct.pack("<HH", 1, 8 * len(values)) + struct.pack(f"<{len(values)}Q", *values) if values else b""
    )
    version = 45 if values else 20
    head = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | version,
        version,
        FLAGS,
        entry.method,
        DOS_TIME,
        DOS_DATE,
        entry.crc,
        compressed,
        size,
        len(entry.name),
        len(extra),
        0,
        0,
        0,
        entry.mode << 16,
        offset,
    )
    return head + entry.name + extra


def _end(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    if count >= MAX_ENTRIES or cd_offset >= LIMIT or cd_size >= LIMIT:
        zip64_at = cd_offset + cd_size
        out += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, (3 << 8) | 45, 45, 0, 0, count, count, cd_size, cd_offset
        )
        out += struct.pack("<IIQI", 0x07064B50, 0, zip64_at, 1)
        count16, size32, offset32 = 0xFFFF, min(cd_size, LIMIT), LIMIT
    else:
        count16, size32, offset32 = count, cd_size, cd_offset
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count16, count16, size32, offset32, 0)


class _Directory:
    """The central-directory records, appended per entry: in memory up to SPILL bytes, then in an
    anonymous temp file, so that streaming a zip of any number of files holds constant memory."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0

    def add(self, record: bytes) -> None:
        self.buffer += record
        self.size += len(record)
        if len(self.buffer) >= SPILL:
            if self.file is None:
                self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by zip_stream's finally
            self.file.write(self.buffer)
            self.buffer = bytearray()

    def chunks(self) -> Iterator[bytes]:
        if self.file is not None:
            self.file.seek(0)
            while chunk := self.file.read(CHUNK):
                yield chunk
        view = memoryview(self.buffer)
        for start in range(0, len(self.buffer), CHUNK):
            yield bytes(view[start : start + CHUNK])
        view.release()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def zip_stream(root: Path, *, prefix: str = "") -> Iterator[bytes]:
    """The zip of `root` as chunks; names start with `prefix` (e.g. "mychar-sdxl/")."""
    offset = count = 0
    directory = _Directory()
    try:
        for entry in entries(root, prefix):
            _measure(entry)
            entry.offset = offset
            head = _local(entry)
            yield head
            offset += len(head)
            for chunk in _data(entry):
                yield chunk
                offset += len(chunk)
            directory.add(_central(entry))
            count += 1
        yield from directory.chunks()
        yield _end(count, offset, directory.size)
    finally:
        directory.close()
