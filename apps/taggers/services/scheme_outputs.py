"""Tagger sets of WD output: one `tagger` TagSet per (item, version), slot `<tagger>@<version>`,
written only through the tags app's one writer (docs/taggers.md#tagging-schemes).

The set holds the general and character tags the WD thresholds selected, each with its
confidence in 1/10000; a repeat of the same (version, item) writes nothing. The writer keeps an
existing row's confidence (a version's output on an item does not change).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.core.exceptions import DomainError
from apps.taggers.models import Tagger, TaggerVersion, quantize
from apps.tags import slots
from apps.tags.models import TagAssignment, TagSet, TagType
from apps.tags.services.assignments import ABSENT, CURRENT, Transition, assignments_write
from apps.tags.services.names import tag_name_normalise, tags_get_or_create
from apps.tags.services.operations.apply import lock_items

TAGGER = TagSet.Kind.TAGGER
MAX_PER_ITEM = 512


def _names(tagger: Tagger, wanted: set[tuple[str, bool]]) -> dict[str, int]:
    """Raw WD name → tag id in the tagger's vocabulary (names the vocabulary cannot hold are
    left out); character rows get the `character` type when the library has one."""
    vocabulary = tagger.vocabulary
    character = TagType.objects.filter(key="character").first()
    normal: dict[str, str] = {}
    types: dict[str, TagType | None] = {}
    for raw, is_character in sorted(wanted):
        try:
            name = tag_name_normalise(raw=raw, vocabulary=vocabulary)
        except DomainError:
            continue
        normal[raw] = name
        if is_character and character is not None:
            types[name] = character
    tags = tags_get_or_create(vocabulary=vocabulary, names=list(normal.values()), types=types)
    return {raw: tags[name].pk for raw, name in normal.items() if name in tags}


def tagger_sets_write(
    tagger: Tagger, version: TaggerVersion, outputs: Mapping[int, Any], *, actor_id: int | None
) -> dict[str, int]:
    """Write each item's WD output ({item: (WDOutput, labels)}) into its tagger set (caller's
    transaction; items, then sets, then tags are locked in that order)."""
    ids = sorted(outputs)
    if not ids:
        return {"tags_written": 0}
    lock_items(ids)
    wanted: dict[int, list[tuple[str, float]]] = {}
    for item_id in ids:
        output, labels = outputs[item_id]
        chosen = output.selected[:MAX_PER_ITEM]
        scores = {**output.general, **output.character}
        wanted[item_id] = [(labels[i].name, scores[i]) for i in chosen]
    kinds = {
        labels[i].name: i in output.character
        for output, labels in outputs.values()
        for i in output.selected[:MAX_PER_ITEM]
    }
    tag_ids = _names(tagger, set(kinds.items()))
    slot = slots.tagger(model=tagger.name, version=str(version.number))
    sets_of = {"media_item_id__in": ids, "kind": TAGGER, "vocabulary_id": tagger.vocabulary_id, "slot": slot}
    existing = dict(TagSet.objects.filter(**sets_of).values_list("media_item_id", "pk"))
    TagSet.objects.bulk_create(
        [
            TagSet(
                media_item_id=i,
                kind=TAGGER,
                vocabulary_id=tagger.vocabulary_id,
                slot=slot,
                tagger_model=tagger.name,
                tagger_version=str(version.number),
                stored_threshold=quantize(tagger.stored_threshold),
                origin_label=f"tagger {tagger.name} v{version.number}"[:200],
            )
            for i in ids
            if i not in existing
        ],
        ignore_conflicts=True,
    )
    sets = dict(TagSet.objects.select_for_update().filter(**sets_of).values_list("media_item_id", "pk"))
    rows: dict[tuple[int, int], int] = {
        (s, t): state
        for s, t, state in TagAssignment.objects.filter(tagset_id__in=list(sets.values())).values_list(
            "tagset_id", "tag_id", "state"
        )
    }
    transitions = []
    for item_id in ids:
        set_id = sets[item_id]
        for position, (raw, score) in enumerate(wanted[item_id]):
            tag_id = tag_ids.get(raw)
            state = rows.get((set_id, tag_id or 0), ABSENT)
            if tag_id is None or state == CURRENT:
                continue
            transitions.append(
                Transition(
                    set_id,
                    tag_id,
                    item_id,
                    state,
                    CURRENT,
                    position=position,
                    via=TagAssignment.Via.TAGGER,
                    confidence=quantize(score),
                )
            )
    written = assignments_write(transitions, kind=TAGGER, operation_id=None, actor_id=actor_id)
    return {"tags_written": written.changes, "sets_created": len(ids) - len(existing)}
