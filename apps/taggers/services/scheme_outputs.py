"""Tagger sets of WD output: one `tagger` TagSet per (item, version), slot `<tagger>@<version>`
(`<tagger>@<version>:masked` for an `image_masked:` step), written only through the tags app's
one writer (docs/taggers.md#outputs).

Two phases, so the lock order stays item → set → tag (docs/taggers.md#applying):

1. `tag_names_resolve`, before the batch's transaction: the WD names → tag ids of the tagger's
   vocabulary; an open vocabulary gets the missing tags created (character rows typed
   `character` when the library has one; existing tags are never retyped), a closed one drops
   the names it does not know and counts them (`tags_unknown`).
2. `tagger_sets_write`, in the batch's transaction: each item's set is made equal to its
   selected tags (`apply.sets_replace`, shared with heads): predictions that went away are
   deleted, a row a person removed stays removed, a repeat writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.core.exceptions import DomainError
from apps.taggers.models import Tagger, TaggerVersion, quantize
from apps.taggers.services.apply import sets_replace
from apps.tags import slots
from apps.tags.models import Tag, TagType, Vocabulary
from apps.tags.services.names import tag_name_normalise, tags_get_or_create

MAX_PER_ITEM = 512
MASKED = "masked"


@dataclass
class Resolved:
    """WD names → tag ids of the tagger's vocabulary, and how many names it could not hold."""

    tag_ids: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)  # raw names a closed vocabulary lacks


def _selected(outputs: Mapping[int, Any]) -> dict[str, bool]:
    """Raw name → is a character, over every item's selected tags."""
    kinds: dict[str, bool] = {}
    for output, labels in outputs.values():
        for i in output.selected[:MAX_PER_ITEM]:
            kinds[labels[i].name] = i in output.character
    return kinds


def tag_names_resolve(tagger: Tagger, outputs: Mapping[int, Any]) -> Resolved:
    """Phase 1 (outside the batch's transaction): tag ids for every selected name. Names the
    vocabulary cannot hold as names are left out; a closed vocabulary's unknown names are
    dropped (`unknown`), never created."""
    vocabulary = tagger.vocabulary
    kinds = _selected(outputs)
    normal: dict[str, str] = {}
    for raw in sorted(kinds):
        try:
            normal[raw] = tag_name_normalise(raw=raw, vocabulary=vocabulary)
        except DomainError:
            continue
    names = set(normal.values())
    found = dict(Tag.objects.filter(vocabulary=vocabulary, name__in=sorted(names)).values_list("name", "pk"))
    missing = sorted(names - set(found))
    unknown: set[str] = set()
    if missing and vocabulary.policy == Vocabulary.Policy.CLOSED:
        unknown = set(missing)
    elif missing:
        character = TagType.objects.filter(key="character").first()
        types: dict[str, TagType | None] = {
            normal[raw]: character for raw, is_character in kinds.items() if is_character and raw in normal
        }
        made = tags_get_or_create(
            vocabulary=vocabulary, names=missing, types={n: t for n, t in types.items() if n in missing},
            retype=False,
        )  # fmt: skip
        found.update({name: tag.pk for name, tag in made.items()})
    return Resolved(
        tag_ids={raw: found[name] for raw, name in normal.items() if name in found},
        unknown={raw for raw, name in normal.items() if name in unknown},
    )


def step_slot(tagger: Tagger, version: TaggerVersion, source: str) -> str:
    """The tagger set a WD step on the whole image writes: `<tagger>@<version>`, or
    `<tagger>@<version>:masked` for `image_masked:` input (its own slot, never the unmasked one)."""
    variant = MASKED if source == "image_masked" else ""
    return slots.tagger(model=tagger.name, version=str(version.number), variant=variant)


def tagger_sets_write(
    tagger: Tagger,
    version: TaggerVersion,
    outputs: Mapping[int, Any],
    resolved: Resolved,
    *,
    source: str = "image",
    actor_id: int | None,
) -> dict[str, int]:
    """Phase 2 (caller's transaction): make each item's set equal to its WD output
    ({item: (WDOutput, labels)}); tags must have been resolved (`tag_names_resolve`) first.
    `tags_unknown` counts the selected (item, name) pairs a closed vocabulary dropped."""
    wanted: dict[int, list[tuple[int, int]]] = {}
    unknown = 0
    for item_id, (output, labels) in outputs.items():
        unknown += sum(1 for i in output.selected[:MAX_PER_ITEM] if labels[i].name in resolved.unknown)
        scores = {**output.general, **output.character}
        wanted[item_id] = [
            (resolved.tag_ids[labels[i].name], quantize(scores[i]))
            for i in output.selected[:MAX_PER_ITEM]
            if labels[i].name in resolved.tag_ids
        ]
    written = sets_replace(
        tagger=tagger,
        version=version,
        wanted=wanted,
        slot=step_slot(tagger, version, source),
        actor_id=actor_id,
    )
    return {"tags_written": written.changes, "sets_created": written.sets_created, "tags_unknown": unknown}
