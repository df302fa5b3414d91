"""The media storage a test runs on, read and written without the product's storage code.

`media_store` (tests/conftest.py) runs a test twice: on a local folder (`FileSystemStorage`) and
on an S3 bucket (django-storages' `S3Storage`) served by moto in server mode on a free local port.
Tests check stored files through a `MediaStore`, so the same assertions hold on both.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image


def local_files(root: Path) -> list[str]:
    """Every regular file under a local folder, as storage keys (sorted)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@dataclass
class MediaStore:
    """What is stored, seen from outside the product: a local folder or an S3 bucket.

    `files()` on S3 also lists anything written to the local media folder (prefixed `local:`):
    with S3 configured, nothing may land there, so such a key fails the same comparisons.
    """

    backend: str  # "local" or "s3"
    root: Path  # the local media folder (MEDIA_ROOT)
    client: Any = None  # boto3 S3 client (S3 only)
    bucket: str = ""

    def files(self) -> list[str]:
        if self.backend == "local":
            return local_files(self.root)
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            found += [entry["Key"] for entry in page.get("Contents", [])]
        return sorted(found + [f"local:{key}" for key in local_files(self.root)])

    def read(self, key: str) -> bytes:
        if self.backend == "local":
            return (self.root / key).read_bytes()
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def write(self, key: str, data: bytes) -> None:
        """Replace a stored file (to damage it after upload)."""
        if self.backend == "local":
            (self.root / key).write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def image(self, key: str) -> Image.Image:
        """A stored picture, opened from its bytes (use as a context manager)."""
        return Image.open(io.BytesIO(self.read(key)))
