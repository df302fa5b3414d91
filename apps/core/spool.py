"""Spool files: local temporary copies of incoming bytes, kept in the data folder.

Uploads, downloads and video copies are spooled to `BAGGINTAG_SPOOL_DIR` (default
`$BAGGINTAG_DATA_DIR/spool`, on the same filesystem as the media folder, so a stored original is
a hard link, not a second copy), never to the system temp folder. Names carry the host and the
process id (`bt-in-<host>-<pid>-…`), so `spool_sweep` (the job sweeper and every worker start)
removes files whose process on this host is gone; files of other hosts or unknown names go
once they are older than `BAGGINTAG_SPOOL_MAX_AGE_HOURS`. See docs/operations.md#failure-handling.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import IO

from apps.core import conf

logger = logging.getLogger(__name__)


def _host() -> str:
    return "".join(ch for ch in socket.gethostname() if ch.isalnum())[:40] or "host"


def spool_dir() -> Path:
    """The spool folder (created on first use)."""
    folder = Path(conf.spool_dir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spool_file(*, prefix: str, suffix: str = "") -> IO[bytes]:
    """A new spool file opened for writing (`delete=False`: the caller unlinks `.name`)."""
    return tempfile.NamedTemporaryFile(
        prefix=f"{prefix}{_host()}-{os.getpid()}-", suffix=suffix, dir=spool_dir(), delete=False
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spool_sweep(*, now: float | None = None) -> list[str]:
    """Delete spool files left by dead processes (and very old ones); returns their names."""
    now = now or time.time()
    max_age = conf.spool_max_age_hours()
    host = _host()
    removed = []
    for path in spool_dir().glob("bt-*"):
        parts = path.name.split("-")
        try:
            owner_host, pid = parts[2], int(parts[3])
        except (IndexError, ValueError):
            owner_host, pid = "", 0
        try:
            old = now - path.stat().st_mtime > max_age * 3600
        except FileNotFoundError:
            continue
        if old or (owner_host == host and pid and not _pid_alive(pid)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        logger.info("removed %s stale spool files", len(removed))
    return removed
