"""Browser-displayable previews of images browsers cannot show (TIFF, HEIC).

Made on first request from the original and stored beside it (WebP, long side ≤ PREVIEW_SIZE,
orientation applied), so item pages and the crop tool work for every format. The crop tool
measures in the original's pixels (the page gives it the original's size), so the preview's
own size does not matter (docs/architecture.md#storage).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.files import File
from django.core.files.storage import default_storage
from PIL import Image

from apps.core.exceptions import NotFoundError
from apps.media.exceptions import MediaBombError, MediaCorruptError
from apps.media.formats import BROWSER_IMAGE_FORMATS, PIL_FORMATS
from apps.media.models import MediaItem
from apps.media.services import probe

PREVIEW_SIZE = 2048


def preview_key(sha256: str) -> str:
    return f"previews/{sha256[:2]}/{sha256[2:4]}/{sha256}.webp"


def needs_preview(item: MediaItem) -> bool:
    """Whether browsers need a converted picture to show this item."""
    return item.format in PIL_FORMATS and item.format not in BROWSER_IMAGE_FORMATS


@dataclass(frozen=True)
class Displayable:
    key: str
    content_type: str


def _render(item: MediaItem) -> bytes:
    try:
        with default_storage.open(item.storage_key, "rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle, formats=[PIL_FORMATS[item.format]]) as image:
                picture = probe.display_picture(image, PREVIEW_SIZE)
    except FileNotFoundError as exc:
        raise NotFoundError("The stored file is missing.", code="media.file_missing") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaBombError("The image is too large to decode safely.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaCorruptError(f"The original could not be decoded ({exc}).") from exc
    buffer = io.BytesIO()
    picture.save(buffer, "WEBP", quality=90, method=2)
    return buffer.getvalue()


def media_item_displayable(*, item: MediaItem) -> Displayable:
    """What a browser can show for the item: the original, or its stored preview (made now if
    missing; concurrent first requests store one copy)."""
    if not needs_preview(item):
        return Displayable(item.storage_key, item.mime_type)
    key = preview_key(item.sha256)
    if not default_storage.exists(key):
        saved = default_storage.save(key, File(io.BytesIO(_render(item)), name=key))
        if saved != key:  # another request stored it first: same picture
            default_storage.delete(saved)
    return Displayable(key, "image/webp")
