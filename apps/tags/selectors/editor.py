"""What the tag editor shows for one item: every tag set side by side with chips, tips and
provenance, read in a fixed number of queries (docs/tags.md#the-tag-editor)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from apps.tags import slots
from apps.tags.models import Description, EffectiveTag, TagAssignment, TagSet
from apps.tags.selectors.tagsets import tag_set_list_for_item
from apps.tags.selectors.vocabularies import vocabulary_default

_VIA: dict[str, str] = {
    TagAssignment.Via.MANUAL: "added by hand",
    TagAssignment.Via.IMPORT: "imported",
    TagAssignment.Via.TAGGER: "predicted by the tagger",
    TagAssignment.Via.PROMOTE: "promoted",
    TagAssignment.Via.BULK: "bulk edit",
    TagAssignment.Via.MAPPING: "mapped",
    TagAssignment.Via.INHERIT: "inherited",
}


# --- what the editor shows --------------------------------------------------------------------


@dataclass
class Chip:
    """One tag as shown: coloured by type, with how it arrived as a tooltip."""

    name: str
    type_name: str
    color: str
    tip: str
    percent: int | None = None  # tagger confidence, floored (34.5 % shows as 34, below 35)
    confidence: int | None = None  # 1/10000
    below: bool = False  # under the promote threshold
    in_curated: bool = False
    blocked: bool = False  # removed from the curated set by a person: promote skips it
    implied: bool = False


@dataclass
class Panel:
    """One tag set's column."""

    tag_set: TagSet
    title: str
    detail: str = ""
    link_item_id: int | None = None
    chips: list[Chip] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.tag_set.get_kind_display()

    @property
    def promotable(self) -> int:
        """How many chips promote would add (not yet curated, not tombstoned, above threshold)."""
        return sum(1 for c in self.chips if not (c.in_curated or c.blocked or c.below))


@dataclass
class EditorState:
    """Everything the editor partial renders for one item."""

    item: Any
    curated: Panel | None
    others: list[Panel]
    effective: list[Chip]
    removed: list[Chip]
    descriptions: list[Description]
    threshold: int  # percent
    description_form: Any = None  # the "add a description" form, bound after a refused add

    @property
    def curated_version(self) -> int:
        """The form's row_version: 0 while the item has no curated set yet."""
        return self.curated.tag_set.row_version if self.curated else 0


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _set_label(tag_set: TagSet) -> str:
    if tag_set.kind == TagSet.Kind.TAGGER:
        return f"tagger {tag_set.tagger_model or tag_set.slot}"
    if tag_set.origin_label:
        return f"{tag_set.get_kind_display()} set “{tag_set.origin_label}”"
    return f"{tag_set.get_kind_display()} set"


def _tip(row: TagAssignment, sets: dict[int, TagSet]) -> str:
    """How an assignment arrived: type, via, who, when, confidence, entered name, origin set."""
    how = _VIA.get(row.added_via, row.added_via)
    actor = row.actor.get_username() if row.actor_id and row.actor else ""
    lines = [row.tag.type.name, f"{how}{f' by {actor}' if actor else ''} · {_when(row.updated_at)}"]
    if row.confidence is not None:
        lines.append(f"confidence {row.confidence / 100:.1f} %")
    if row.entered_tag and row.entered_tag != row.tag.name:
        if row.kind == TagSet.Kind.CURATED:
            lines.append(f"entered as “{row.entered_tag}” (alias of {row.tag.name})")
        else:
            lines.append(f"received as “{row.entered_tag}”")
    if row.origin_set_id:
        origin = sets.get(row.origin_set_id)
        lines.append(f"from the {_set_label(origin)}" if origin else f"from tag set #{row.origin_set_id}")
    return "\n".join(lines)


def _chip(row: TagAssignment, sets: dict[int, TagSet]) -> Chip:
    return Chip(
        name=row.tag.name,
        type_name=row.tag.type.name,
        color=row.tag.type.color,
        tip=_tip(row, sets),
        confidence=row.confidence,
        percent=None if row.confidence is None else math.floor(row.confidence / 100),
    )


def _panel(tag_set: TagSet) -> Panel:
    """Title and origin line of a set's column."""
    if tag_set.kind == TagSet.Kind.CURATED:
        return Panel(tag_set, "Curated", "Yours: search and export read this set.")
    if tag_set.kind == TagSet.Kind.TAGGER:
        version = f" v{tag_set.tagger_version}" if tag_set.tagger_version else ""
        return Panel(
            tag_set,
            f"Tagger · {tag_set.tagger_model or tag_set.slot}{version}",
            f"stored from {tag_set.stored_threshold / 100:g} % confidence",
        )
    if tag_set.kind == TagSet.Kind.SOURCE:
        parts = []
        origin = tag_set.origin
        if origin is not None:
            parts.append(origin.get_kind_display())
            name = origin.archive_member or origin.original_filename or origin.url
            if name:
                parts.append(name)
            parts.append(_when(origin.created_at))
        return Panel(
            tag_set,
            f"Source · from {tag_set.origin_label}" if tag_set.origin_label else "Source",
            "file: " + " · ".join(parts) if parts else "",
        )
    derived_from = slots.derived_parse(tag_set.slot)
    link = derived_from.item_id if derived_from else None
    return Panel(tag_set, "Derived", tag_set.origin_label or tag_set.slot, link_item_id=link)


def editor_state(item: Any) -> EditorState:
    """Read everything the editor shows for `item` (a fixed number of queries, whatever the size)."""
    tag_sets = list(tag_set_list_for_item(media_item=item))
    rows = [row for tag_set in tag_sets for row in tag_set.current_assignments]  # type: ignore[attr-defined]
    prefetch_related_objects(
        rows, Prefetch("actor", queryset=get_user_model().objects.only("id", "username"))
    )
    by_id = {tag_set.pk: tag_set for tag_set in tag_sets}
    vocabulary = vocabulary_default()
    curated_set = next(
        (s for s in tag_sets if s.kind == TagSet.Kind.CURATED and s.vocabulary_id == vocabulary.pk), None
    )
    threshold = vocabulary.default_tagger_threshold
    curated_ids: set[int] = set()
    removed: list[Chip] = []
    tombstoned: set[int] = set()
    if curated_set is not None:
        curated_ids = {row.tag_id for row in curated_set.current_assignments}  # type: ignore[attr-defined]
        gone = (
            TagAssignment.objects.filter(tagset=curated_set, state=TagAssignment.State.DELETED)
            .select_related("tag__type", "actor")
            .order_by("-updated_at")
        )
        for row in gone:
            tombstoned.add(row.tag_id)
            chip = _chip(row, by_id)
            chip.tip = f"{row.tag.type.name}\nremoved{f' by {row.actor}' if row.actor_id else ''}"
            chip.tip += f" · {_when(row.updated_at)}"
            removed.append(chip)
    curated: Panel | None = None
    others: list[Panel] = []
    for tag_set in tag_sets:
        panel = _panel(tag_set)
        assignments = list(tag_set.current_assignments)  # type: ignore[attr-defined]
        if tag_set.kind == TagSet.Kind.TAGGER:
            assignments.sort(key=lambda r: (-(r.confidence or 0), r.tag.name))
        for row in assignments:
            chip = _chip(row, by_id)
            if tag_set is not curated_set:
                chip.in_curated = row.tag_id in curated_ids
                chip.blocked = row.tag_id in tombstoned
                chip.below = row.confidence is not None and row.confidence < threshold
            panel.chips.append(chip)
        if tag_set is curated_set:
            curated = panel
        else:
            others.append(panel)
    effective = [
        Chip(
            name=row.tag.name,
            type_name=row.tag.type.name,
            color=row.tag.type.color,
            implied=row.is_implied,
            tip=f"{row.tag.type.name}\n"
            + ("implied by a rule" if row.is_implied else "from the tag sets")
            + f"\non {row.tag.media_count} item{'s' if row.tag.media_count != 1 else ''}",
        )
        for row in EffectiveTag.objects.filter(media_item=item)
        .select_related("tag__type")
        .order_by("tag__type__display_order", "tag__name")
    ]
    return EditorState(
        item=item,
        curated=curated,
        others=others,
        effective=effective,
        removed=removed,
        descriptions=list(Description.objects.filter(media_item=item).select_related("actor").order_by("id")),
        threshold=math.ceil(threshold / 100),
    )
