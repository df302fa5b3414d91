"""Writes on existing media items."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from django.db import transaction

from apps.core.exceptions import DomainError
from apps.media import events
from apps.media.exceptions import FocusBoxError
from apps.media.models import MediaItem
from apps.media.services import previews, storage
from apps.media.services.ingest import _site, _url_hash, metadata_clean


@transaction.atomic
def media_item_delete(*, item: MediaItem) -> None:
    """Delete an item, its sources and tag sets; its files go after commit if nothing shares them."""
    keys = [k for k in (item.storage_key, item.thumbnail_key) if k]
    if previews.needs_preview(item):
        keys.append(previews.preview_key(item.sha256))
    events.send_item_deleting(item_ids=[item.pk])
    item.delete()

    def _remove_unshared() -> None:
        shared = set(
            MediaItem.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True)
        ) | set(MediaItem.objects.filter(thumbnail_key__in=keys).values_list("thumbnail_key", flat=True))
        storage.delete_keys([k for k in keys if k not in shared])

    transaction.on_commit(_remove_unshared)


SELECTION_DELETE_MAX = 10_000  # items one page request may delete
_CHUNK = 500
_T = TypeVar("_T")


def _batched(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@transaction.atomic
def media_items_delete(*, ids: list[int]) -> int:
    """Delete many items as `media_item_delete` does one, in chunks of 500; returns how many.

    A deleted video's captures go with it; its frames stay, unlinked (docs/operations.md#deleting-media).
    """
    if len(ids) > SELECTION_DELETE_MAX:
        raise DomainError(
            f"At most {SELECTION_DELETE_MAX:,} items can be deleted at once; select fewer.",
            code="media.too_many_items",
        )
    rows = list(
        MediaItem.objects.filter(pk__in=ids).only("pk", "storage_key", "thumbnail_key", "sha256", "format")
    )
    keys = sorted(
        {key for row in rows for key in (row.storage_key, row.thumbnail_key) if key}
        | {previews.preview_key(row.sha256) for row in rows if previews.needs_preview(row)}
    )
    pks = sorted(row.pk for row in rows)
    for chunk in _batched(pks):
        events.send_item_deleting(item_ids=list(chunk))
        MediaItem.objects.filter(pk__in=chunk).delete()

    def _remove_unshared() -> None:
        shared: set[str] = set()
        for chunk_keys in _batched(keys):
            shared |= set(
                MediaItem.objects.filter(storage_key__in=chunk_keys).values_list("storage_key", flat=True)
            )
            shared |= set(
                MediaItem.objects.filter(thumbnail_key__in=chunk_keys).values_list("thumbnail_key", flat=True)
            )
        storage.delete_keys([k for k in keys if k not in shared])

    transaction.on_commit(_remove_unshared)
    return len(pks)


@transaction.atomic
def media_item_update_metadata(*, item: MediaItem, fields: list[str]) -> MediaItem:
    """Save edits to the descriptive fields (name, artist, source, rating, notes)."""
    editable = {"name", "artist", "source", "rating", "notes"}
    changed = [f for f in fields if f in editable]
    cleaned = metadata_clean(name=item.name, source=item.source, artist=item.artist)
    item.name, item.source, item.artist = cleaned.name, cleaned.source, cleaned.artist
    if "source" in changed:
        item.source_hash, item.site = _url_hash(item.source), _site(item.source)
        changed += ["source_hash", "site"]
    item.full_clean(validate_unique=False)
    if changed:
        item.save(update_fields=[*changed, "updated_at"])
    return item


FOCUS_DECIMALS = 6  # a focus box is kept to 6 decimals: stable JSON, far below a pixel


def focus_clean(value: Any) -> list[float] | None:
    """A focus box [x0, y0, x1, y1] as fractions of the upright picture, or None (cleared).

    Four finite numbers in [0, 1] with x0 < x1 and y0 < y1 (docs/training.md#focus-boxes);
    anything else is a 400 `media.bad_focus` naming what is wrong."""
    if value is None or (isinstance(value, list | tuple) and len(value) == 0):
        return None
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise FocusBoxError("A focus box is a list of four numbers [x0, y0, x1, y1], or null to clear it.")
    numbers = []
    for name, number in zip(("x0", "y0", "x1", "y1"), value, strict=True):
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise FocusBoxError(f"Focus {name} must be a finite number, not {number!r}.")
        if not 0 <= number <= 1:
            raise FocusBoxError(
                f"Focus {name} must be between 0 and 1 (a fraction of the picture), not {number!r}."
            )
        numbers.append(round(float(number), FOCUS_DECIMALS) + 0.0)
    x0, y0, x1, y1 = numbers
    if not (x0 < x1 and y0 < y1):
        raise FocusBoxError("A focus box needs x0 < x1 and y0 < y1 (left before right, top before bottom).")
    return numbers


@transaction.atomic
def media_item_set_focus(*, item: MediaItem, focus: Any) -> MediaItem:
    """Set (or clear, with None) the item's focus box after `focus_clean`."""
    item.focus = focus_clean(focus)
    item.save(update_fields=["focus", "updated_at"])
    return item
