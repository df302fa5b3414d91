"""Reads behind the training pages (docs/training.md#pages): lint findings linked to items, the
fidelity report of a plan (delivery matrix, keep rates, bucket histogram) and the base-model
profile rows. The fidelity parts take a built `Plan`; the pages build it through the plan service.

The renderers, bucket predictions and simulations live in `apps/training/logic/`.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q

from apps.media.models import MediaItem
from apps.training.logic import buckets, captions, fidelity
from apps.training.logic.fidelity import SimTrainer
from apps.training.plan import Plan, PlanItem, Renderer

BUNDLE_ID = re.compile(r"i([0-9a-f]{12})(?:-m)?")
LINKED_MAX = 500
BUCKET_SAMPLE = 2000
SIM_ITEMS = 200
SIM_DRAWS = 4000

# docs/training.md#delivery (export formats §8.1): what each trainer does with a behaviour the
# bundle asks for. N native, A approximated (reported), M materialised, - not delivered.
DELIVERY: list[tuple[str, str, dict[str, str]]] = [
    ("shuffle", "Flexible tags shuffle", {"kohya": "N", "onetrainer": "N", "diffusers": "M"}),
    ("flex_drop", "One flexible drop rate", {"kohya": "N", "onetrainer": "N", "diffusers": "M"}),
    (
        "type_rates",
        "Per-type drop rates; droppable prefix or suffix",
        {"kohya": "M", "onetrainer": "M", "diffusers": "M"},
    ),
    ("suffix", "Fixed suffix", {"kohya": "N", "onetrainer": "A", "diffusers": "M"}),
    ("atomic", "Tags kept together (groups)", {"kohya": "N", "onetrainer": "A", "diffusers": "M"}),
    ("alternates", "Weighted alternate descriptions", {"kohya": "N", "onetrainer": "N", "diffusers": "N"}),
    ("whole_drop", "Description whole-drop", {"kohya": "M", "onetrainer": "M", "diffusers": "M"}),
    ("caption_dropout", "Caption dropout", {"kohya": "N", "onetrainer": "A", "diffusers": "N"}),
    ("mirror", "Per-item mirroring", {"kohya": "N", "onetrainer": "N", "diffusers": "M"}),
]
CELL_LABELS = {"N": "native", "A": "approximated", "M": "materialised", "-": "not delivered"}
RENDERERS: dict[str, Renderer] = {"kohya": "kohya", "onetrainer": "neutral", "diffusers": "diffusers"}
SIM_TRAINERS: dict[str, SimTrainer] = {"kohya": "kohya", "onetrainer": "onetrainer", "diffusers": "diffusers"}


# --- lint ---------------------------------------------------------------------------------------


def findings_linked(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings, each with `media_id` when its `where` names a bundle item
    (`<partition>/i<12 hex>`): one query for the first LINKED_MAX findings' items."""
    rows = [dict(f) for f in findings]
    prefixes: dict[int, str] = {}
    for n, row in enumerate(rows[:LINKED_MAX]):
        tail = str(row.get("where") or "").rsplit("/", 1)[-1]
        match = BUNDLE_ID.fullmatch(tail)
        if match:
            prefixes[n] = match.group(1)
    found: dict[str, int] = {}
    wanted = sorted(set(prefixes.values()))
    if wanted:
        query = Q()
        for prefix in wanted:
            query |= Q(sha256__startswith=prefix)
        for pk, sha in MediaItem.objects.filter(query).values_list("pk", "sha256"):
            found.setdefault(sha[:12], pk)
    for n, prefix in prefixes.items():
        rows[n]["media_id"] = found.get(prefix)
    for row in rows:
        row.setdefault("media_id", None)
    return rows


def findings_counts(findings: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(f.get("severity") for f in findings)
    return {"errors": counts.get("E", 0), "warnings": counts.get("W", 0)}


# --- fidelity -----------------------------------------------------------------------------------


def _used(plan: Plan) -> dict[str, bool]:
    policy = plan.caption_policy
    live = [t for t in policy.types.values() if t.zone != "excluded"]
    flex_rates = {t.drop_rate for t in live if t.zone == "flex" and t.drop_rate > 0}
    return {
        "shuffle": policy.shuffle,
        "flex_drop": len(flex_rates) == 1,
        "type_rates": len(flex_rates) > 1 or any(t.drop_rate > 0 for t in live if t.zone != "flex"),
        "suffix": any(t.zone == "suffix" for t in live),
        "atomic": any(t.atomic for t in live),
        "alternates": len(policy.alternates) > 1,
        "whole_drop": any(t.whole_drop_rate > 0 for t in live),
        "caption_dropout": policy.caption_dropout_rate > 0,
        "mirror": plan.image_policy.mirror == "per_item",
    }


def _materialized(plan: Plan, trainer: str) -> bool:
    """Whether the trainer's renderer writes materialised lines."""
    return bool(captions.materialized(plan.caption_policy, RENDERERS[trainer]))


def delivery_matrix(plan: Plan) -> dict[str, Any]:
    """Per behaviour: whether the session asks for it and what each targeted trainer does."""
    used = _used(plan)
    trainers = [t for t in plan.targets if t in RENDERERS]
    rows = [
        {
            "key": key,
            "label": label,
            "used": used[key],
            "cells": [{"trainer": t, "code": cells[t], "label": CELL_LABELS[cells[t]]} for t in trainers],
        }
        for key, label, cells in DELIVERY
    ]
    return {
        "trainers": trainers,
        "rows": rows,
        "materialized": {t: _materialized(plan, t) for t in trainers},
    }


def policy_keep_rates(plan: Plan) -> dict[str, float]:
    """Per exported tag type: the share of (non-empty) captions the policy keeps its tags in."""
    types = plan.caption_policy.types
    return {
        key: round(1.0 - t.drop_rate, 4)
        for key, t in sorted(types.items(), key=lambda kv: (kv[1].zone_order, kv[0]))
        if t.zone != "excluded"
    }


def simulation(
    plan: Plan, trainer: str, items: Sequence[PlanItem], draws: int = SIM_DRAWS
) -> dict[str, Any] | None:
    """The trainer's own caption pipeline over the first SIM_ITEMS items' captions, `draws` times
    (`apps/training/logic/fidelity.simulate`): keep rates per tag type, the share of non-empty
    captions, fixed zones in place, markup that leaked. None without items."""
    sampled = [item.caption for item in items[:SIM_ITEMS]]
    if not sampled:
        return None
    stats = fidelity.simulate(
        sampled, plan.caption_policy, SIM_TRAINERS[trainer], seed=plan.seed, draws=draws
    )
    return {
        "keep_rates": {str(k): float(v) for k, v in stats.keep_rates().items()},
        "caption_rate": float(stats.caption_rate),
        "prefix_in_place": float(stats.prefix_position_rate),
        "suffix_in_place": float(stats.suffix_position_rate),
        "leaks": [str(line) for line in stats.markup_leaks],
        "items": len(sampled),
        "draws": int(stats.draws),
    }


def bucket_histogram(plan: Plan, trainer: str, items: Sequence[PlanItem]) -> dict[str, Any]:
    """Images per predicted bucket of `items`."""
    if trainer == "diffusers":
        return {
            "labels": [],
            "counts": [],
            "rows": [],
            "seen": 0,
            "sampled": False,
            "upscaled": 0,
            "square": True,
        }
    image = plan.image_policy
    counts: Counter[str] = Counter()
    upscaled = 0
    seen = 0
    for item in items:
        if item.width <= 0 or item.height <= 0:
            continue
        if trainer == "onetrainer":
            fit = buckets.onetrainer_predict(
                item.width,
                item.height,
                resolution=image.resolution,
                quantum=plan.base_model.onetrainer_quantum,
            )
        else:
            try:
                fit = buckets.kohya_predict(
                    item.width,
                    item.height,
                    resolution=image.resolution,
                    min_=image.bucket_min,
                    max_=image.bucket_max,
                    step=image.bucket_step,
                    no_upscale=image.no_upscale,
                )
            except ValueError:  # no kohya bucket (no_upscale, a side under the step): lint's L08
                continue
        counts[f"{fit.bucket[0]}×{fit.bucket[1]}"] += 1
        upscaled += int(bool(fit.upscale))
        seen += 1

    def order(label: str) -> tuple[float, str]:
        w, h = (int(v) for v in label.split("×"))
        return (w / h, label)

    labels = sorted(counts, key=order)
    return {
        "labels": labels,
        "counts": [counts[label] for label in labels],
        "rows": [{"label": label, "count": counts[label]} for label in labels],
        "seen": seen,
        "sampled": plan.item_count > seen,
        "upscaled": upscaled,
        "square": False,
    }


def fidelity_report(plan: Plan) -> dict[str, Any]:
    """What the bundle asks against what each targeted trainer does."""
    from apps.training.plots import bucket_chart, keep_rate_chart

    policy = policy_keep_rates(plan)
    matrix = delivery_matrix(plan)
    sample = list(itertools.islice(plan.items(), BUCKET_SAMPLE)) if matrix["trainers"] else []
    trainers = []
    for trainer in matrix["trainers"]:
        sim = simulation(plan, trainer, sample)
        simulated = None if sim is None else sim["keep_rates"]
        histogram = bucket_histogram(plan, trainer, sample)
        rows = [
            {
                "type": key,
                "policy": rate,
                "simulated": None if simulated is None else simulated.get(key),
                "gap": None if simulated is None or key not in simulated else round(simulated[key] - rate, 4),
            }
            for key, rate in policy.items()
        ]
        trainers.append(
            {
                "trainer": trainer,
                "rows": rows,
                "simulated": sim is not None,
                "simulation": sim,
                "caption_policy": round(1.0 - plan.caption_policy.caption_dropout_rate, 4),
                "keep_chart": keep_rate_chart(trainer, rows) if rows else "",
                "histogram": histogram,
                "bucket_chart": bucket_chart(trainer, histogram) if histogram["labels"] else "",
            }
        )
    return {"matrix": matrix, "trainers": trainers, "item_count": plan.item_count, "notes": plan.notes}


# --- Textual Inversion preview ------------------------------------------------------------------

TI_RENDERERS: dict[str, Renderer] = {"kohya": "ti_kohya", "onetrainer": "ti_onetrainer", "a1111": "ti_a1111"}


def _ti_render(plan: Plan, item: Any, renderer: Renderer) -> dict[str, Any]:
    """One TI renderer's lines for an item (`logic.captions.render` with the token)."""
    assert plan.textual_inversion is not None
    rendered = captions.render(
        item.caption, plan.caption_policy, renderer, seed=plan.seed, token=plan.textual_inversion.token
    )
    return {"lines": list(rendered.lines), "keep": rendered.keep, "materialized": rendered.materialized}


TI_PREVIEW_ITEMS = 6


def ti_preview(plan: Plan, n: int = TI_PREVIEW_ITEMS) -> dict[str, Any]:
    """The first `n` items of a Textual Inversion plan with each TI rendering its trainers read."""
    renderers = [TI_RENDERERS[t] for t in plan.targets if t in TI_RENDERERS]
    items = []
    for item in itertools.islice(plan.items(), n):
        items.append(
            {
                "id": item.id,
                "media_id": item.lineage.media_id,
                "partition": item.partition,
                "width": item.width,
                "height": item.height,
                "repeats": item.repeats,
                "mirror_of": item.mirror_of,
                "tags": [{"text": e.text, "type": e.type} for e in item.caption.entries],
                "captions": {r: _ti_render(plan, item, r) for r in renderers},
            }
        )
    return {
        "version": plan.session_version,
        "item_count": plan.item_count,
        "partitions": plan.partitions,
        "renderers": renderers,
        "items": items,
        "notes": plan.notes,
    }
