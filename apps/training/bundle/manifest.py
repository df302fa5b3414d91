"""session.json and items.jsonl records, keys in schema order (docs/export-bundle.md#manifest)."""

from __future__ import annotations

import dataclasses
from typing import Any

from apps.training.bundle.context import UPSTREAM, Context
from apps.training.plan import PlanItem


def session(ctx: Context, path_files: list[str]) -> dict[str, Any]:
    plan = ctx.plan
    base, method, image, caption = plan.base_model, plan.method, plan.image_policy, plan.caption_policy
    ti = plan.textual_inversion
    return {
        "schema": "baggintag.session/1",
        "session": {
            "id": plan.session_id,
            "name": plan.session_name,
            "version": plan.session_version,
            "created": plan.created,
            "seed": plan.seed,
            "app_version": plan.app_version,
        },
        "base_model": {
            "family": base.family,
            "profile": base.profile,
            "prediction": base.prediction,
            "clip_skip": base.clip_skip,
            "source": {"kind": base.source_kind, "ref": base.source_ref, "sha256": base.source_sha256},
            "diffusers_ref": base.diffusers_ref,
        },
        "method": {
            "kind": method.kind,
            "rank": method.rank,
            "alpha": method.alpha,
            "train_text_encoder": method.train_text_encoder,
            "batch_size": method.batch_size,
            "epochs": method.epochs,
            "learning_rate": method.learning_rate,
        },
        "image_policy": {
            "resolution": image.resolution,
            "bucketing": {
                "min": image.bucket_min,
                "max": image.bucket_max,
                "step": image.bucket_step,
                "no_upscale": image.no_upscale,
            },
            "min_source_side": image.min_source_side,
            "max_aspect": image.max_aspect,
            "crop": image.crop,
            "mirror": image.mirror,
            "color_jitter": dict(sorted(image.color_jitter.items())) if image.color_jitter else None,
            "alpha_background": image.alpha_background,
        },
        "caption_policy": {
            "underscores_to_spaces": caption.underscores_to_spaces,
            "shuffle": caption.shuffle,
            "caption_dropout_rate": caption.caption_dropout_rate,
            "types": {
                key: {k: v for k, v in dataclasses.asdict(t).items() if k != "key"}
                for key, t in sorted(caption.types.items())
            },
            "alternates": dict(sorted(caption.alternates.items())),
            "materialize": {"mode": caption.materialize_mode, "variants": caption.variants},
            "max_tokens": caption.max_tokens,
        },
        "datasets": [_dataset(d) for d in plan.datasets],
        "textual_inversion": None
        if ti is None
        else {
            "token": ti.token,
            "init_word": ti.init_word,
            "num_vectors": ti.num_vectors,
            "prompting": ti.prompting,
            "repeats": ti.repeats,
        },
        "samples": [
            {"prompt": s.prompt, "width": s.width, "height": s.height, "seed": s.seed, "steps": s.steps}
            for s in plan.samples
        ],
        "targets": list(plan.targets),
        "export": {
            "bundle_layout": plan.export.bundle_layout,
            "target_root": ctx.root,
            "prefix_mode": plan.export.prefix_mode,
            "images": plan.export.images,
            **({"kohya_masks": plan.export.kohya_masks} if plan.export.kohya_masks != "none" else {}),
            "path_files": path_files,
            "upstream": {t: UPSTREAM[t] for t in ("kohya", "onetrainer", "diffusers")},
        },
    }


def _dataset(d: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "role": d.role, "repeats": d.repeats, "loss_weight": d.loss_weight}
    if d.overrides:
        out["overrides"] = dict(sorted(d.overrides.items()))
    if d.class_tokens:
        out["class_tokens"] = d.class_tokens
    if d.snapshot is not None:
        out["snapshot"] = d.snapshot
    return out


def item_record(
    item: PlanItem,
    *,
    file: str,
    sha256: str,
    size: tuple[int, int],
    transform: tuple[str, ...],
    buckets: dict[str, list[int]],
    rendered: dict[str, int],
) -> dict[str, Any]:
    lineage = item.lineage
    return {
        "schema": "baggintag.item/1",
        "id": item.id,
        "dataset": item.dataset,
        "partition": item.partition,
        "file": file,
        "sha256": sha256,
        "width": size[0],
        "height": size[1],
        "source": {
            "media_id": lineage.media_id,
            "original_name": lineage.original_name,
            "transform": [*lineage.transform, *transform],
            "video": lineage.video,
            # Beyond the spec's four keys (issue 15: the full lineage), after them so readers of the
            # documented schema are unaffected (docs/export-bundle.md#manifest).
            "url": lineage.source_url,
            "artist": lineage.artist,
            "parent_media_id": lineage.parent_media_id,
            "recipe": lineage.recipe,
        },
        "mirror_ok": item.mirror_ok,
        "mirror_of": item.mirror_of,
        "focus": list(item.focus) if item.focus is not None else None,
        "weight": item.weight,
        "repeats": item.repeats,
        "tags": [{"text": e.text, "type": e.type} for e in item.caption.entries],
        "descriptions": {k: list(v) for k, v in sorted(item.caption.descriptions.items())},
        "buckets": buckets,
        "rendered": rendered,
    }
