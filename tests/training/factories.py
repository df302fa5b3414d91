"""Builders for training tests: items with tags (real files), datasets, sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset
from apps.media.models import MediaItem
from apps.training.models import TrainingSession
from apps.training.services.sessions import session_create
from tests.tags.factories import make_item, tags_make


def items(
    tag_lists: Sequence[Sequence[str]], *, size: tuple[int, int] = (64, 48), start: int = 0
) -> list[MediaItem]:
    """One real PNG per tag list (distinct pictures), tags from a source set."""
    return [make_item(list(tags), seed=start + n, size=size) for n, tags in enumerate(tag_lists)]


def typed(names: Sequence[str], type_key: str) -> None:
    """Create tags of a type before items use them (ingest keeps an existing tag's type)."""
    tags_make(names, type_key=type_key)


def dataset(name: str, members: Sequence[MediaItem], **fields: Any) -> Dataset:
    ds = dataset_services.dataset_create(name=name, **fields)
    if members:
        dataset_services.members_edit(owner=ds, action="add", item_ids=[m.pk for m in members])
    return ds


def session(
    datasets: Sequence[Dataset | dict[str, Any]],
    *,
    name: str = "Mychar LoRA",
    base_model: str = "sd15",
    **fields: Any,
) -> TrainingSession:
    entries = [d if isinstance(d, dict) else {"dataset": d.pk} for d in datasets]
    return session_create(name=name, base_model=base_model, datasets=entries, **fields)
