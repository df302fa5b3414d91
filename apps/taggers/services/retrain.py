"""Debounced retraining of head taggers (docs/taggers.md#debounced-retraining).

Counting: the tags app's one writer hands each committed batch of curated transitions to
`label_changes_count` as {tag id: transitions} (`apps.tags.extensions.curated_listener_register`),
so the count costs one read of the changed tags and one UPDATE per head tagger they belong to,
never a scan of the assignments. A head counts a change when the tag is in its vocabulary (and
its tag types, when it names some). Reaching `BAGGINTAG_RETRAIN_AFTER_CHANGES` sets `due_at` to
now + `BAGGINTAG_RETRAIN_DELAY_S` once; later changes add to the count and leave `due_at`.

Queueing: the beat task `taggers.retrain_due` (every minute) reads the due counter rows (one
indexed range, a handful of taggers) and calls `training.tagger_train` for each, which returns
the version already queued or training instead of making a second one; a new training resets
the tagger's counter in its transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta

from django.db.models import Case, F, When
from django.utils import timezone

from apps.core.exceptions import DomainError
from apps.taggers import conf
from apps.taggers.models import LabelChanges, Tagger
from apps.tags.models import Tag

logger = logging.getLogger(__name__)

CHUNK = 5000


def _heads() -> list[tuple[int, int, set[int]]]:
    """(tagger id, vocabulary id, tag type ids or empty) of every head that can train."""
    heads = Tagger.objects.filter(kind=Tagger.Kind.EMBEDDING_HEAD, embedding_space__isnull=False)
    types: dict[int, set[int]] = defaultdict(set)
    for tagger_id, type_id in Tagger.tag_types.through.objects.filter(
        tagger_id__in=heads.values("pk")
    ).values_list("tagger_id", "tagtype_id"):
        types[tagger_id].add(type_id)
    return [(pk, vocabulary_id, types[pk]) for pk, vocabulary_id in heads.values_list("pk", "vocabulary_id")]


def label_changes_count(counts: Mapping[int, int]) -> dict[int, int]:
    """Add {tag id: curated transitions} to the counters of the heads they concern; returns
    {tagger id: added}. Runs after the writer's commit (outside its transaction)."""
    threshold = conf.retrain_after_changes()
    if threshold <= 0 or not counts:
        return {}
    heads = _heads()
    if not heads:
        return {}
    vocabularies = {vocabulary_id for _, vocabulary_id, _ in heads}
    tag_ids = sorted(counts)
    added: dict[int, int] = defaultdict(int)
    for start in range(0, len(tag_ids), CHUNK):
        rows = Tag.objects.filter(
            pk__in=tag_ids[start : start + CHUNK], vocabulary_id__in=vocabularies
        ).values_list("pk", "vocabulary_id", "type_id")
        for tag_id, vocabulary_id, type_id in rows:
            for tagger_id, head_vocabulary, types in heads:
                if head_vocabulary == vocabulary_id and (not types or type_id in types):
                    added[tagger_id] += counts[tag_id]
    if not added:
        return {}
    LabelChanges.objects.bulk_create(
        [LabelChanges(tagger_id=t) for t in sorted(added)], ignore_conflicts=True
    )
    due = timezone.now() + timedelta(seconds=conf.retrain_delay_s())
    for tagger_id, n in sorted(added.items()):
        # `due_at` comes first in the SET list: MariaDB evaluates assignments left to right, so
        # its CASE must read `changes` before this UPDATE adds to it (other databases always do).
        LabelChanges.objects.filter(tagger_id=tagger_id).update(
            due_at=Case(
                When(due_at__isnull=True, changes__gte=threshold - n, then=due),
                default=F("due_at"),
            ),
            changes=F("changes") + n,
            updated_at=timezone.now(),
        )
    return dict(added)


def label_changes_reset(*, tagger_id: int) -> None:
    """A training was queued: count from zero again (caller's transaction)."""
    LabelChanges.objects.filter(tagger_id=tagger_id).update(changes=0, due_at=None, updated_at=timezone.now())


def retrain_due() -> dict[str, list[int]]:
    """Beat body of `taggers.retrain_due`: queue one training per due head tagger. A tagger that
    cannot train now (no labels, no vectors) is logged and its counter starts again."""
    from apps.taggers.services.training import tagger_train

    queued: list[int] = []
    refused: list[int] = []
    due = LabelChanges.objects.filter(due_at__lte=timezone.now()).order_by("due_at")
    for tagger_id in list(due.values_list("tagger_id", flat=True)[:100]):
        tagger = Tagger.objects.filter(pk=tagger_id, kind=Tagger.Kind.EMBEDDING_HEAD).first()
        if tagger is None:
            LabelChanges.objects.filter(tagger_id=tagger_id).delete()
            continue
        try:
            version = tagger_train(tagger=tagger)
        except DomainError as err:
            logger.warning("retrain of tagger %s refused: %s", tagger.name, err.message)
            label_changes_reset(tagger_id=tagger_id)
            refused.append(tagger_id)
            continue
        queued.append(version.pk)
    return {"versions": queued, "refused": refused}


def register() -> None:
    """Listen to curated label changes (called from TaggersConfig.ready)."""
    from apps.tags.extensions import curated_listener_register

    curated_listener_register(key="taggers.retrain", listener=label_changes_count)
