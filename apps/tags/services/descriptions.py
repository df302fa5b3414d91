"""Descriptions: free-text captions of items or regions, with provenance and versions."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.db import transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.tags.models import Description, TagAssignment, TagSet

MAX_TEXT = 10_000


def _clean(*, media_item: Any, kind: str, label: str, text: Any, box: Any) -> dict[str, Any]:
    if kind not in Description.Kind.values:
        raise DomainError(
            f"kind must be one of {', '.join(Description.Kind.values)}.", code="tags.invalid_description"
        )
    if not isinstance(text, str) or not text.strip():
        raise DomainError("A description needs some text.", code="tags.invalid_description")
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) > MAX_TEXT:
        raise DomainError(
            f"Descriptions are at most {MAX_TEXT:,} characters.", code="tags.invalid_description"
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise DomainError("The text contains control characters.", code="tags.invalid_description")
    if kind == Description.Kind.CUSTOM and not label.strip():
        raise DomainError(
            "A custom description needs a label (e.g. 'outfit').", code="tags.invalid_description"
        )
    fields: dict[str, Any] = {
        "kind": kind,
        "label": label.strip()[:100],
        "text": text,
        "box_x": None,
        "box_y": None,
        "box_w": None,
        "box_h": None,
    }
    if box is not None:
        if not isinstance(box, list | tuple) or len(box) != 4 or not all(isinstance(v, int) for v in box):
            raise DomainError("box must be [x, y, width, height] in pixels.", code="tags.invalid_description")
        x, y, w, h = box
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > media_item.width or y + h > media_item.height:
            raise DomainError(
                f"The box {list(box)} is not inside the {media_item.width}×{media_item.height} image.",
                code="media.box_outside",
            )
        fields.update(box_x=x, box_y=y, box_w=w, box_h=h)
    return fields


@transaction.atomic
def description_create(
    *, media_item: Any, text: Any, kind: str = "whole", label: str = "", box: Any = None, actor: Any = None
) -> Description:
    """Add a person's description (curated) of the item or of one region."""
    fields = _clean(media_item=media_item, kind=kind, label=label, text=text, box=box)
    description = Description(
        media_item=media_item,
        set_kind=TagSet.Kind.CURATED,
        added_via=TagAssignment.Via.MANUAL,
        actor=actor if actor is not None and actor.is_authenticated else None,
        **fields,
    )
    description.full_clean()
    description.save()
    return description


@transaction.atomic
def description_update(
    *,
    description: Description,
    text: Any,
    kind: str | None = None,
    label: str | None = None,
    box: Any = "keep",
    expected_version: int | None = None,
    actor: Any = None,
) -> Description:
    """Change a description; a stale `expected_version` is a 409."""
    locked = Description.objects.select_for_update().select_related("media_item").get(pk=description.pk)
    if expected_version is not None and expected_version != locked.row_version:
        raise ConflictError(
            "The description changed since you loaded it; reload and edit again.",
            code="tags.stale_version",
            details={"row_version": locked.row_version},
        )
    current_box = None if locked.box_w is None else [locked.box_x, locked.box_y, locked.box_w, locked.box_h]
    fields = _clean(
        media_item=locked.media_item,
        kind=kind or locked.kind,
        label=locked.label if label is None else label,
        text=text,
        box=current_box if box == "keep" else box,
    )
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.row_version += 1
    locked.added_via = TagAssignment.Via.MANUAL
    locked.actor = actor if actor is not None and actor.is_authenticated else None
    locked.save()
    return locked


def description_delete(*, description: Description) -> None:
    description.delete()
