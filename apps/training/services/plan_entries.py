"""The dataset entries of a plan (docs/training.md#plan): sources (snapshot parts or live
members), balancing and effective repeats."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetGroup, Snapshot, Subset
from apps.datasets.selectors import dataset_members, subset_members
from apps.datasets.selectors.groups import group_datasets
from apps.datasets.services.snapshots import snapshot_create
from apps.training.plan import (
    DatasetEntry,
)
from apps.training.selectors.items import Source

# --- dataset entries ----------------------------------------------------------------------------


@dataclass
class _Entry:
    """One dataset of the plan with its source and what its items share."""

    spec: DatasetEntry
    source: Source
    count: int = 0
    weights: dict[int, float] = field(default_factory=dict)  # media id → item weight


def _source(
    dataset: Dataset,
    subset: Subset | None,
    snapshot: Snapshot | None,
    *,
    freeze: bool,
    actor: Any,
    notes: list[str],
    frozen: list[int] | None = None,
) -> tuple[Source, Snapshot | None]:
    if snapshot is None and freeze:
        snapshot = snapshot_create(dataset=dataset, note="frozen for a training export", user=actor)
        if frozen is not None:
            frozen.append(snapshot.pk)  # the export deletes it again when it fails
        notes.append(f"dataset {dataset.slug}: snapshot #{snapshot.number} frozen for this export")
    if snapshot is None:
        members = subset_members(subset=subset) if subset is not None else dataset_members(dataset=dataset)
        return Source(members=members), None
    part = 0
    if subset is not None:
        found = snapshot.parts.filter(subset_id=subset.pk).values_list("position", flat=True).first()
        if found is None:
            raise DomainError(
                f"Snapshot #{snapshot.number} of {dataset.slug} has no part for subset {subset.slug!r}; "
                "pin a newer snapshot or none.",
                code="training.bad_snapshot",
            )
        part = int(found)
    return Source(snapshot_id=snapshot.pk, part=part), snapshot


def _entries(
    s: dict[str, Any], *, freeze: bool, actor: Any, notes: list[str], frozen: list[int] | None = None
) -> list[_Entry]:
    out: list[_Entry] = []
    for raw in s["datasets"]:
        options = {
            "role": raw["role"],
            "loss_weight": float(raw["loss_weight"]),
            "class_tokens": raw["class_tokens"],
            "overrides": raw["overrides"] or {},
            "licence": raw["licence_notes"],
        }
        if raw.get("query"):
            from apps.search.query import search_queryset

            members = search_queryset(q=raw["query"], viewer=actor)
            spec = DatasetEntry(id=raw["slug"], name=raw["slug"], repeats=int(raw["repeats"]), **options)
            entry = _Entry(spec=spec, source=Source(members=members))
            entry.count = entry.source.count()
            out.append((entry, ""))  # type: ignore[arg-type]
            continue
        if raw["dataset"] is not None:
            dataset = Dataset.objects.filter(pk=raw["dataset"]).first()
            if dataset is None:
                raise DomainError(
                    "A dataset of this session was deleted; edit the session.",
                    code="training.unknown_dataset",
                )
            subset = Subset.objects.filter(pk=raw["subset"]).first() if raw["subset"] else None
            snapshot = Snapshot.objects.filter(pk=raw["snapshot"]).first() if raw["snapshot"] else None
            source, snapshot = _source(
                dataset, subset, snapshot, freeze=freeze, actor=actor, notes=notes, frozen=frozen
            )
            slug = raw["slug"] or dataset.slug + (f"-{subset.slug}" if subset is not None else "")
            parts = [(dataset, slug, source, snapshot, subset)]
        else:
            group = DatasetGroup.objects.filter(pk=raw["group"]).first()
            if group is None:
                raise DomainError(
                    "A dataset group of this session was deleted; edit the session.",
                    code="training.unknown_dataset",
                )
            parts = []
            for flat in group_datasets(group=group):
                source, snapshot = _source(
                    flat.dataset, None, None, freeze=freeze, actor=actor, notes=notes, frozen=frozen
                )
                parts.append((flat.dataset, flat.dataset.slug, source, snapshot, None))
        for dataset, slug, source, snapshot, subset in parts:
            spec = DatasetEntry(
                id=slug,
                name=dataset.name + (f" / {subset.name}" if subset is not None else ""),
                repeats=int(raw["repeats"]),
                snapshot=snapshot.number if snapshot is not None else None,
                description=dataset.description,
                dataset_licence=dataset.licence_notes,
                **options,
            )
            entry = _Entry(spec=spec, source=source)
            entry.count = source.count()
            weights = options["overrides"].get("item_weights") or {}
            entry.weights = {int(k): float(v) for k, v in weights.items() if str(k).isdigit()}
            entry.spec = replace(entry.spec, repeats=int(raw["repeats"]))
            out.append((entry, raw["balance"]))  # type: ignore[arg-type]
    return _balanced(out)  # type: ignore[arg-type]


def _balanced(pairs: list[tuple[_Entry, str]]) -> list[_Entry]:
    """`equalize`: within a role, entries so marked get repeats ∝ 1/image count, the largest
    keeping its own repeats (docs/training.md#balancing)."""
    for role in ("train", "regularization"):
        marked = [e for e, rule in pairs if rule == "equalize" and e.spec.role == role and e.count]
        if not marked:
            continue
        largest = max(marked, key=lambda e: e.count)
        target = largest.count * largest.spec.repeats
        for entry in marked:
            entry.spec = replace(entry.spec, repeats=max(1, round(target / entry.count)))
    return [e for e, _ in pairs]


def effective_repeats(repeats: int, weight: float) -> int:
    """§8.4: max(1, round_half_even(repeats · weight))."""
    return max(1, round(repeats * weight))
