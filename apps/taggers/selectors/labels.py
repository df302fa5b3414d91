"""The frozen label set a training job learns from (docs/taggers.md#frozen-labels).

Read in one transaction (one snapshot on MariaDB's REPEATABLE READ), for the items of the
tagger's scope that have a vector in its space and a curated set or a review mark:

* positive (1): the tag is current in the item's curated set;
* negative (0): a curated tombstone (a person removed it, or rejected a prediction), or the item
  is marked reviewed for the tag's type (`ReviewMark`) and the tag is not current;
* unknown (-1): everything else, masked out of loss and metrics.

Tags are the tagger's vocabulary (its tag types when it names some) that are current in at least
one of those curated sets. Later edits do not change a frozen set: its sha256 is stored on the
version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import QuerySet

from apps.media.models import MediaItem
from apps.taggers.models import ReviewMark, Tagger
from apps.tags.models import Tag, TagAssignment, TagSet

CURATED = TagSet.Kind.CURATED
CURRENT = TagAssignment.State.CURRENT
DELETED = TagAssignment.State.DELETED
FETCH = 5_000


@dataclass(frozen=True)
class FrozenLabels:
    item_ids: np.ndarray  # int64, ascending
    tag_ids: list[int]
    names: list[str]
    labels: np.ndarray  # items × tags, int8 −1/0/1


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + FETCH] for i in range(0, len(ids), FETCH)]


def tagger_tags(tagger: Tagger) -> QuerySet[Tag]:
    tags = Tag.objects.filter(vocabulary_id=tagger.vocabulary_id)
    type_ids = list(tagger.tag_types.values_list("pk", flat=True))
    return tags.filter(type_id__in=type_ids) if type_ids else tags


def _scope_ids(tagger: Tagger, candidates: np.ndarray) -> np.ndarray:
    """Candidate item ids (the space's embedded items) narrowed by the tagger's scope query."""
    query = str((tagger.scope or {}).get("query") or "").strip()
    if not query or candidates.size == 0:
        return candidates
    from apps.search.query import search_queryset

    matching = search_queryset(q=query, viewer=None).values_list("pk", flat=True)
    return np.intersect1d(candidates, np.fromiter(matching.iterator(), dtype=np.int64))


def labels_freeze(*, tagger: Tagger, embedded_ids: np.ndarray) -> FrozenLabels:
    """The frozen labels of `tagger` over `embedded_ids` (items with a vector in its space)."""
    scope = _scope_ids(tagger, np.asarray(embedded_ids, dtype=np.int64))
    with transaction.atomic():
        curated_items: set[int] = set()
        for chunk in _chunks(scope.tolist()):
            curated_items.update(
                TagSet.objects.filter(
                    media_item_id__in=chunk, kind=CURATED, vocabulary_id=tagger.vocabulary_id
                ).values_list("media_item_id", flat=True)
            )
        marks: dict[int, set[int]] = defaultdict(set)
        for chunk in _chunks(scope.tolist()):
            for item_id, type_id in ReviewMark.objects.filter(item_id__in=chunk).values_list(
                "item_id", "tag_type_id"
            ):
                marks[int(item_id)].add(int(type_id))
        live = set(
            MediaItem.objects.filter(pk__in=list(curated_items | set(marks))).values_list("pk", flat=True)
        )
        rows = np.asarray(sorted((curated_items | set(marks)) & live), dtype=np.int64)
        tags = tagger_tags(tagger)
        states: list[tuple[int, int, int]] = []
        for chunk in _chunks(rows.tolist()):
            states += list(
                TagAssignment.objects.filter(
                    kind=CURATED, media_item_id__in=chunk, tagset__vocabulary_id=tagger.vocabulary_id,
                    tag__in=tags,
                ).values_list("media_item_id", "tag_id", "state")
            )  # fmt: skip
        positive_tags = sorted({t for _i, t, s in states if s == CURRENT})
        tag_rows = {t.pk: t for t in Tag.objects.filter(pk__in=positive_tags).only("pk", "name", "type_id")}
    col = {tag_id: n for n, tag_id in enumerate(positive_tags)}
    labels = np.full((rows.size, len(positive_tags)), -1, dtype=np.int8)
    row_of = {int(item_id): n for n, item_id in enumerate(rows.tolist())}
    type_cols: dict[int, list[int]] = defaultdict(list)
    for tag_id in positive_tags:
        type_cols[tag_rows[tag_id].type_id].append(col[tag_id])
    for item_id, types in marks.items():
        if item_id in row_of:
            for type_id in types:
                labels[row_of[item_id], type_cols.get(type_id, [])] = 0
    for item_id, tag_id, state in states:
        if tag_id in col:
            labels[row_of[item_id], col[tag_id]] = 1 if state == CURRENT else 0
    return FrozenLabels(
        item_ids=rows,
        tag_ids=positive_tags,
        names=[tag_rows[t].name for t in positive_tags],
        labels=labels,
    )
