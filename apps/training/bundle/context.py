"""What the bundle writers share: the plan, the logic modules, paths and per-partition facts
gathered while the items stream (docs/export-bundle.md#writer)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from apps.training.plan import CaptionPolicy, Partition, Plan, TypePolicy

UPSTREAM = {"kohya": "48d368fa", "onetrainer": "23df3832", "diffusers": "58eb52c0"}
STEM = re.compile(r"^i[0-9a-f]{12}(-m)?$")


def load_logic() -> SimpleNamespace:
    """The pure logic modules (apps/training/logic), imported when an export runs."""
    names = ("rand", "buckets", "captions", "lint")
    return SimpleNamespace(**{n: importlib.import_module(f"apps.training.logic.{n}") for n in names})


def apply_overrides(policy: CaptionPolicy, overrides: dict[str, Any]) -> CaptionPolicy:
    """A dataset's caption policy: dotted overrides (`types.general.drop_rate`, `shuffle`, …)."""
    for path, value in sorted(overrides.items()):
        parts = path.split(".")
        if parts[0] == "types" and len(parts) == 3:
            types = dict(policy.types)
            current = types.get(parts[1], TypePolicy(key=parts[1]))
            types[parts[1]] = dataclasses.replace(current, **{parts[2]: value})
            policy = dataclasses.replace(policy, types=types)
        elif len(parts) == 1 and hasattr(policy, parts[0]):
            policy = dataclasses.replace(policy, **{parts[0]: value})
    return policy


@dataclass
class PartitionFacts:
    """Per-partition facts known only after the items streamed (concepts, reports)."""

    images: int = 0
    max_neutral_lines: int = 0
    keeps: set[int] = field(default_factory=set)
    keep_entries: set[str] = field(default_factory=set)


@dataclass
class Context:
    plan: Plan
    logic: Any
    facts: dict[str, PartitionFacts] = field(default_factory=dict)
    triggers: dict[str, int] = field(default_factory=dict)
    _policies: dict[str, CaptionPolicy] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return self.plan.export.target_root.rstrip("/") or "/"

    def abs(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def policy(self, dataset: str) -> CaptionPolicy:
        if dataset not in self._policies:
            entry = next((d for d in self.plan.datasets if d.id == dataset), None)
            base = self.plan.caption_policy
            self._policies[dataset] = apply_overrides(base, entry.overrides) if entry else base
        return self._policies[dataset]

    def partitions(self) -> list[Partition]:
        return sorted(self.plan.partitions, key=lambda p: p.id)

    def folder(self, partition: Partition | str) -> str:
        """`data/<id>` or `reg/<id>`, relative to the bundle."""
        p = partition if isinstance(partition, Partition) else self.partition(partition)
        return f"{'reg' if p.role == 'regularization' else 'data'}/{p.id}"

    def partition(self, pid: str) -> Partition:
        for p in self.plan.partitions:
            if p.id == pid:
                return p
        raise KeyError(pid)

    def written(self) -> list[Partition]:
        """Non-empty partitions, sorted by id: only these get folders and config entries."""
        return [p for p in self.partitions() if self.facts.get(p.id, PartitionFacts()).images > 0]

    def targets(self, name: str) -> bool:
        return name in self.plan.targets

    def masked(self, partition: Partition) -> bool:
        """Whether the partition gets kohya loss masks (masks/<partition>/, docs/export-bundle.md#masks)."""
        return (
            self.plan.export.kohya_masks == "focus"
            and self.targets("kohya")
            and self.plan.textual_inversion is None
            and partition.role == "train"
        )

    def materialized(self, renderer: str, dataset: str | None = None) -> bool:
        policy = self.policy(dataset) if dataset else self.plan.caption_policy
        return bool(self.logic.captions.materialized(policy, renderer))

    def flex_rate(self, dataset: str | None, renderer: str) -> float:
        """The flex tag-dropout rate the trainer applies itself for `renderer`'s lines
        (`logic.captions.trainer_tag_dropout`: 0 when materialised; the lowest flex rate in
        kohya's wildcard mode, whose lines carry the rest of each higher rate)."""
        policy = self.policy(dataset) if dataset else self.plan.caption_policy
        return float(self.logic.captions.trainer_tag_dropout(policy, renderer))

    def text_random(self) -> bool:
        policy = self.plan.caption_policy
        return (
            policy.shuffle
            or policy.caption_dropout_rate > 0
            or any(t.drop_rate > 0 for t in policy.types.values())
        )

    def diffusers_images(self) -> bool:
        """diffusers/images/ is written: per-item mirroring with some images that must not flip."""
        return (
            self.targets("diffusers")
            and self.plan.image_policy.mirror == "per_item"
            and any(p.flip is False for p in self.plan.partitions if p.role == "train")
        )

    def random_flip(self) -> bool:
        mirror = self.plan.image_policy.mirror
        return mirror == "always_random" or (mirror == "per_item" and not self.diffusers_images())

    def trigger(self) -> str:
        if self.plan.textual_inversion:
            return self.plan.textual_inversion.token
        if not self.triggers:
            return ""
        return sorted(self.triggers.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]

    def output_name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.plan.session_name.lower()).strip("-")
        return slug or self.plan.session_id
