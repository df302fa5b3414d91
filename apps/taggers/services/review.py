"""Review of tagger predictions (docs/taggers.md#review): accept = the tags app's `promote`
into the curated set (tombstones block it), reject = a curated tombstone (a negative for the
next training), batch accept = promote every undecided prediction at or above a confidence."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Exists, OuterRef

from apps.core.exceptions import DomainError, NotFoundError
from apps.media.models import MediaItem
from apps.taggers.models import SCALE, ReviewMark, TaggerVersion
from apps.taggers.selectors.predictions import predictions
from apps.tags.models import Tag, TagAssignment, TagSet
from apps.tags.services.curation import curated_reject, tag_set_promote

BATCH_ACCEPT_MAX_ITEMS = 2_000


def _prediction_set(version: TaggerVersion, item_id: int) -> TagSet:
    from apps.taggers.services.apply import version_slot

    found = TagSet.objects.filter(
        media_item_id=item_id,
        kind=TagSet.Kind.TAGGER,
        vocabulary_id=version.tagger.vocabulary_id,
        slot=version_slot(version),
    ).first()
    if found is None:
        raise NotFoundError(
            f"Item {item_id} has no predictions from {version.tagger.name} v{version.number}.",
            code="taggers.prediction_not_found",
        )
    return found


def _tag(version: TaggerVersion, tag_id: int) -> Tag:
    tag = Tag.objects.filter(pk=tag_id, vocabulary_id=version.tagger.vocabulary_id).first()
    if tag is None:
        raise NotFoundError(f"Tag {tag_id} is not in this tagger's vocabulary.", code="taggers.tag_not_found")
    return tag


def prediction_accept(
    *, version: TaggerVersion, item_id: int, tag_id: int, actor: Any = None
) -> dict[str, Any]:
    """Promote one predicted tag into the item's curated set (skipped when a person removed it:
    `blocked_by_tombstone`)."""
    source = _prediction_set(version, item_id)
    tag = _tag(version, tag_id)
    if not TagAssignment.objects.filter(tagset=source, tag=tag, state=TagAssignment.State.CURRENT).exists():
        raise NotFoundError(
            f"{tag.name} is not predicted for item {item_id}.", code="taggers.prediction_not_found"
        )
    return tag_set_promote(source_set=source, names=[tag.name], actor=actor)


def prediction_reject(
    *, version: TaggerVersion, item_id: int, tag_id: int, actor: Any = None
) -> dict[str, Any]:
    """The item does not have the tag: a curated tombstone (created with the set if needed)."""
    source = _prediction_set(version, item_id)
    tag = _tag(version, tag_id)
    item = MediaItem.objects.get(pk=item_id)
    return curated_reject(media_item=item, tag=tag, actor=actor, source_set=source)


def predictions_batch_accept(
    *, version: TaggerVersion, min_confidence: float, actor: Any = None
) -> dict[str, Any]:
    """Accept every undecided prediction with confidence ≥ `min_confidence` (one promote per
    item, each undoable); at most BATCH_ACCEPT_MAX_ITEMS items per call."""
    if not 0.0 <= min_confidence <= 1.0:
        raise DomainError("min_confidence is between 0 and 1.", code="taggers.threshold_range")
    decided = Exists(
        TagAssignment.objects.filter(
            kind=TagSet.Kind.CURATED, media_item_id=OuterRef("media_item_id"), tag_id=OuterRef("tag_id")
        )
    )
    rows = (
        predictions(version=version)
        .filter(confidence__gte=round(min_confidence * SCALE))
        .exclude(decided)
        .values_list("tagset_id", "tag__name")
        .order_by("tagset_id", "tag_id")
    )
    per_set: dict[int, list[str]] = defaultdict(list)
    for set_id, name in rows.iterator():
        if set_id not in per_set and len(per_set) >= BATCH_ACCEPT_MAX_ITEMS:
            raise DomainError(
                f"More than {BATCH_ACCEPT_MAX_ITEMS} items would change; "
                "raise min_confidence and accept in steps.",
                code="taggers.batch_too_large",
            )
        per_set[set_id].append(name)
    added = blocked = 0
    for set_id, names in per_set.items():
        result = tag_set_promote(source_set=TagSet.objects.get(pk=set_id), names=names, actor=actor)
        added += len(result["added"])
        blocked += len(result["blocked_by_tombstone"])
    return {"items": len(per_set), "added": added, "blocked_by_tombstone": blocked}


def review_mark(*, item_id: int, tag_type_id: int, actor: Any = None) -> ReviewMark:
    """Every tag of this type on this item was reviewed: missing curated tags of the type are
    negatives for training."""
    user = actor if actor is not None and actor.is_authenticated else None
    mark, _ = ReviewMark.objects.get_or_create(
        item_id=item_id, tag_type_id=tag_type_id, defaults={"marked_by": user}
    )
    return mark
