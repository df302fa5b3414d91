"""Events the media app sends, so higher apps react without media knowing them.

Media sits below tags (docs/architecture.md#layers): it stores files and items and knows nothing
of tags. What tags must do when media changes (keep an upload's original tags, let a crop or a
frame inherit its parent's tags, forget counters of deleted items) is done by receivers that the
higher app connects in its `AppConfig.ready()`.

Every event is sent *inside* the sender's transaction, so a receiver that raises rolls the whole
change back: the upload leaves no row and no file, the delete deletes nothing. Receivers must
therefore be quick and set-based (they run once per item, or once per batch for deletions).

`arrival_tags_clean` is the one event that returns something: the cleaned original tags.

* `arrival_tags_clean(tags)`: sent by `metadata_clean` before anything is stored. Receivers return
  the normalised names, or raise a `DomainError` naming what to fix.
* `item_arrived(item, source, tags, tag_source, actor)`: sent by ingest once the item (new or a
  duplicate) and its `MediaSource` row are saved. Receivers keep the tags that came with the file.
* `item_derived(item, parent, relation)`: sent by transforms (`relation="parent"`) and frame
  captures (`"video"`) once the derived item is saved or found again. Receivers copy what it
  inherits, idempotently.
* `items_derived(pairs, relation)`: the same for a batch of derived items, [(item, parent)], sent
  once per batch by bulk transforms (apps/media/services/transform_batches.py). Receivers answer it
  set-based, with the same result as one `item_derived` per pair.
* `item_deleting(item_ids)`: sent before items are deleted. Receivers forget per-item counters.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

arrival_tags_clean = Signal()
item_arrived = Signal()
item_derived = Signal()
items_derived = Signal()
item_deleting = Signal()


def arrival_tags_cleaned(*, tags: list[str]) -> tuple[str, ...]:
    """The original tags as the receiver (the tags app) normalises them; unchanged without one.

    Exactly one receiver may answer; a second one would make the result ambiguous.
    """
    answers = [value for _, value in arrival_tags_clean.send(sender=None, tags=tags) if value is not None]
    if len(answers) > 1:
        raise RuntimeError("More than one app answers arrival_tags_clean; connect exactly one receiver.")
    return tuple(answers[0]) if answers else tuple(tags)


def send_item_arrived(*, item: Any, source: Any, tags: tuple[str, ...], tag_source: str, actor: Any) -> None:
    """Tell receivers that `item` arrived (again) through `source`, with its original tags."""
    item_arrived.send(
        sender=type(item), item=item, source=source, tags=tags, tag_source=tag_source, actor=actor
    )


def send_item_derived(*, item: Any, parent: Any, relation: str) -> None:
    """Tell receivers that `item` was made from `parent` (`relation`: parent or video); receivers
    are idempotent, since the same capture or recipe may arrive again."""
    item_derived.send(sender=type(item), item=item, parent=parent, relation=relation)


def send_items_derived(*, pairs: list[tuple[Any, Any]], relation: str) -> None:
    """`send_item_derived` for a batch: each (item, parent) pair was made from that parent."""
    if pairs:
        items_derived.send(sender=None, pairs=pairs, relation=relation)


def send_item_deleting(*, item_ids: list[int]) -> None:
    """Tell receivers that these items are about to be deleted (same transaction)."""
    if item_ids:
        item_deleting.send(sender=None, item_ids=item_ids)
