"""Zip archives: checked as a whole before anything is staged, then read member by member."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from apps.media import conf
from apps.media.exceptions import ArchiveError, ArchiveTooLargeError
from apps.media.services.probe import ARCHIVE_MAGIC

_NESTED_SUFFIXES = (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst")
# Ratios above the limit only matter for members big enough to hurt.
_RATIO_FLOOR_BYTES = 1024 * 1024
# Zip structures read by _check_entry_count (APPNOTE 4.3.12, 4.3.14-16).
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")


@dataclass(frozen=True)
class ArchiveMember:
    index: int
    name: str
    size: int


def _member_error(name: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"Archive member {name[:200]!r} {why}; the archive was not imported.", details={"member": name[:500]}
    )


def _too_many_entries(limit: int) -> ArchiveTooLargeError:
    return ArchiveTooLargeError(
        f"The archive has more than {limit:,} entries (folders count too); "
        f"split it into zips of at most {limit:,}.",
    )


def _check_entry_count(fp: IO[bytes], limit: int) -> None:
    """Refuse more than `limit` entries by walking the central directory, keeping nothing.

    zipfile.ZipFile builds an object for every entry (hundreds of bytes each) before anyone
    can count them, so a small upload of millions of empty entries would exhaust memory and
    CPU first. End records this walk cannot follow are left for zipfile to judge.
    """
    fp.seek(0, os.SEEK_END)
    end = fp.tell()
    tail_start = max(0, end - _EOCD.size - 0xFFFF)  # the record, then a comment of <= 64 KiB
    fp.seek(tail_start)
    tail = fp.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return
    record = tail_start + at
    directory_size = _EOCD.unpack_from(tail, at)[5]
    zip64_at = record - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
    if zip64_at >= 0:
        fp.seek(zip64_at)
        head = fp.read(_ZIP64_EOCD.size + _ZIP64_LOCATOR.size)
        if head[_ZIP64_EOCD.size : _ZIP64_EOCD.size + 4] == b"PK\x06\x07" and head[:4] == b"PK\x06\x06":
            directory_size = _ZIP64_EOCD.unpack_from(head)[8]
            record = zip64_at
    if directory_size > record:
        return
    fp.seek(record - directory_size)
    count = walked = 0
    while walked + _CENTRAL_ENTRY.size <= directory_size:
        header = fp.read(_CENTRAL_ENTRY.size)
        if len(header) < _CENTRAL_ENTRY.size or header[:4] != b"PK\x01\x02":
            return
        count += 1
        if count > limit:
            raise _too_many_entries(limit)
        name_len, extra_len, comment_len = struct.unpack_from("<3H", header, 28)
        fp.seek(name_len + extra_len + comment_len, os.SEEK_CUR)
        walked += _CENTRAL_ENTRY.size + name_len + extra_len + comment_len


def archive_members(archive: IO[bytes]) -> list[ArchiveMember]:
    """Validate a zip and list its file members; raises before anything is extracted.

    Refused: not a zip, encrypted members, absolute or `..` paths, symlinks, nested
    archives, too many members, too many bytes in total, or bomb-like compression ratios.
    """
    limit = conf.max_archive_members()
    try:
        _check_entry_count(archive, limit)
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError("The archive is not a valid zip file.") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limit:
            raise _too_many_entries(limit)
        members: list[ArchiveMember] = []
        total = 0
        for index, info in enumerate(infos):
            name = info.filename
            path = PurePosixPath(name.replace("\\", "/"))
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                raise _member_error(name, "has an absolute path")
            if ".." in path.parts:
                raise _member_error(name, "points outside the archive (contains '..')")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _member_error(name, "is a symbolic link")
            if info.flag_bits & 0x1:
                raise _member_error(name, "is encrypted")
            if info.is_dir():
                continue
            if name.lower().endswith(_NESTED_SUFFIXES):
                raise _member_error(name, "is itself an archive (nested archives are refused)")
            total += info.file_size
            if total > conf.max_archive_bytes():
                raise ArchiveTooLargeError(
                    f"The archive expands to more than {conf.max_archive_bytes():,} bytes.",
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR_BYTES and ratio > conf.max_archive_ratio():
                raise ArchiveTooLargeError(
                    f"Archive member {name[:200]!r} expands {ratio:,.0f}× (limit "
                    f"{conf.max_archive_ratio()}×); it looks like a zip bomb.",
                    details={"member": name[:500]},
                )
            if info.file_size == 0:
                members.append(ArchiveMember(index=index, name=name, size=0))
                continue
            try:
                with zf.open(info) as member:
                    head = member.read(8)
            except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as exc:
                raise _member_error(name, f"cannot be read ({exc})") from exc
            if head.startswith(ARCHIVE_MAGIC):
                raise _member_error(name, "is itself an archive (nested archives are refused)")
            members.append(ArchiveMember(index=index, name=name, size=info.file_size))
    if not members:
        raise ArchiveError("The archive contains no files.")
    return members
