"""Zip archives: checked as a whole before anything is staged, then read member by member."""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from django.conf import settings

from apps.media.exceptions import ArchiveError, ArchiveTooLargeError
from apps.media.services.probe import ARCHIVE_MAGIC

_NESTED_SUFFIXES = (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst")
# Ratios above the limit only matter for members big enough to hurt.
_RATIO_FLOOR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ArchiveMember:
    index: int
    name: str
    size: int


def _member_error(name: str, why: str) -> ArchiveError:
    return ArchiveError(f"Archive member {name[:200]!r} {why}; the archive was not imported.",
                        details={"member": name[:500]})


def archive_members(archive: IO[bytes]) -> list[ArchiveMember]:
    """Validate a zip and list its file members; raises before anything is extracted.

    Refused: not a zip, encrypted members, absolute or `..` paths, symlinks, nested
    archives, too many members, too many bytes in total, or bomb-like compression ratios.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError("The archive is not a valid zip file.") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS:
            raise ArchiveTooLargeError(
                f"The archive has {len(infos):,} entries; at most "
                f"{settings.BAGGINTAG_MAX_ARCHIVE_MEMBERS:,} are allowed.",
            )
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
            if total > settings.BAGGINTAG_MAX_ARCHIVE_BYTES:
                raise ArchiveTooLargeError(
                    f"The archive expands to more than {settings.BAGGINTAG_MAX_ARCHIVE_BYTES:,} bytes.",
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR_BYTES and ratio > settings.BAGGINTAG_MAX_ARCHIVE_RATIO:
                raise ArchiveTooLargeError(
                    f"Archive member {name[:200]!r} expands {ratio:,.0f}× (limit "
                    f"{settings.BAGGINTAG_MAX_ARCHIVE_RATIO}×); it looks like a zip bomb.",
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
