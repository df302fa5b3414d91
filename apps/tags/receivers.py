"""How tags answers media's events (apps/media/events.py) and jobs' `job_finished`
(apps/jobs/events.py); connected in TagsConfig.ready().

Media's receivers run inside media's transaction and only call tags services, so a failure here
rolls the upload, capture or deletion back (docs/architecture.md#events). `job_finished` comes
after the job's change committed.
"""

from __future__ import annotations

from typing import Any

from apps.tags import slots
from apps.tags.services import (
    tag_names_canonical,
    tag_set_create_source,
    tag_set_inherit,
    tag_sets_inherit,
    vocabulary_default,
)
from apps.tags.services.effective import tag_counts_forget_items
from apps.tags.services.operations import operation_job_ended


def arrival_tags_clean(sender: Any, *, tags: list[str], **kwargs: Any) -> list[str]:
    """Normalise an upload's original tags before anything is stored (refusals name the tag)."""
    return tag_names_canonical(raw=tags, vocabulary=vocabulary_default())


def item_arrived(
    sender: Any, *, item: Any, source: Any, tags: tuple[str, ...], tag_source: str, actor: Any, **kwargs: Any
) -> None:
    """Keep the tags that came with a file as a source set tied to that arrival."""
    if tags:
        tag_set_create_source(
            media_item=item, origin=source, origin_label=tag_source, names=list(tags), actor=actor
        )


def item_derived(sender: Any, *, item: Any, parent: Any, relation: str, **kwargs: Any) -> None:
    """A crop or frame inherits its parent's (or video's) tags as a derived set."""
    tag_set_inherit(target=item, source=parent, slot=slots.derived(relation=relation, item_id=parent.pk))


def items_derived(sender: Any, *, pairs: list[tuple[Any, Any]], relation: str, **kwargs: Any) -> None:
    """A batch of crops inherits their parents' tags: one set-based write for the batch."""
    tag_sets_inherit(
        pairs=[(item, parent, slots.derived(relation=relation, item_id=parent.pk)) for item, parent in pairs]
    )


def item_deleting(sender: Any, *, item_ids: list[int], **kwargs: Any) -> None:
    """Items are about to go: their tags' counters and per-type statistics follow at once."""
    tag_counts_forget_items(item_ids=item_ids)


def job_finished(
    sender: Any = None, job_id: int = 0, kind: str = "", status: str = "", **kwargs: Any
) -> None:
    """A job ended: an operation it left queued or running ends too (docs/tags.md#operations-and-undo)."""
    operation_job_ended(job_id=int(job_id), status=status)
