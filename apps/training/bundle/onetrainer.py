"""OneTrainer files: concepts.json (every key, in ConceptConfig's order), keep files, samples,
a partial config.json, launchers; the TI concept and config (docs/export-bundle.md#onetrainer).

Key order, versions and defaults come from `apps.training.upstream` (OneTrainer's `to_dict()`
order: `__version`, `image`, `text`, `name`, `path`, …); this module only sets the values it means."""

from __future__ import annotations

import uuid
from typing import Any

from apps.training import upstream
from apps.training.bundle.context import UPSTREAM, Context
from apps.training.bundle.portable import json_text
from apps.training.plan import Partition

MODEL_TYPES = upstream.ONETRAINER_MODEL_TYPE
METHODS = {
    "lora": "LORA",
    "finetune": "FINE_TUNE",
    "dreambooth": "FINE_TUNE",
    "textual_inversion": "EMBEDDING",
}
JITTER = ("brightness", "contrast", "saturation", "hue")


def ordered(
    keys: dict[str, str], version: int, defaults: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """A OneTrainer config object: `__version`, then every key of `keys` in upstream order, our
    value where we set one, else upstream's default. A value for a key upstream lacks is a bug."""
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ValueError(f"OneTrainer has no keys {unknown}")
    return {"__version": version, **{k: values[k] if k in values else defaults[k] for k in keys}}


def _image(ctx: Context, flip: bool) -> dict[str, Any]:
    image = ctx.plan.image_policy
    jitter = image.color_jitter or {}
    values: dict[str, Any] = {
        "enable_crop_jitter": image.crop == "random",
        "enable_random_flip": flip,
    }
    for name in JITTER:
        strength = float(jitter.get(name, 0.0))
        values[f"enable_random_{name}"] = strength > 0
        values[f"random_{name}_max_strength"] = strength
    return ordered(
        upstream.ONETRAINER_CONCEPT_IMAGE_KEYS,
        upstream.onetrainer.ONETRAINER_CONCEPT_IMAGE_VERSION,
        upstream.ONETRAINER_CONCEPT_IMAGE_DEFAULTS,
        values,
    )


def _text(ctx: Context, *, keep: int, dropout: float, keep_file: str) -> dict[str, Any]:
    return ordered(
        upstream.ONETRAINER_CONCEPT_TEXT_KEYS,
        upstream.onetrainer.ONETRAINER_CONCEPT_TEXT_VERSION,
        upstream.ONETRAINER_CONCEPT_TEXT_DEFAULTS,
        {
            "enable_tag_shuffling": ctx.plan.caption_policy.shuffle,
            "keep_tags_count": keep,
            "tag_dropout_enable": dropout > 0,
            "tag_dropout_mode": "RANDOM",
            "tag_dropout_probability": float(dropout),
            "tag_dropout_special_tags_mode": "WHITELIST" if keep_file else "NONE",
            "tag_dropout_special_tags": keep_file,
        },
    )


def concept(
    ctx: Context,
    *,
    name: str,
    path: str,
    flip: bool,
    repeats: float,
    loss_weight: float,
    text: dict[str, Any],
    text_variations: int,
) -> dict[str, Any]:
    image = ctx.plan.image_policy
    augment = flip or image.crop == "random" or bool(image.color_jitter)
    return ordered(
        upstream.ONETRAINER_CONCEPT_KEYS,
        upstream.ONETRAINER_CONCEPT_VERSION,
        upstream.ONETRAINER_CONCEPT_DEFAULTS,
        {
            "image": _image(ctx, flip),
            "text": text,
            "name": name,
            "path": path,
            "seed": int(ctx.logic.rand.concept_seed(ctx.plan.seed, name)),
            "image_variations": 4 if augment else 1,
            "text_variations": text_variations,
            "balancing": float(repeats),
            "loss_weight": float(loss_weight),
        },
    )


def keep_file_name(partition: str) -> str:
    return f"onetrainer/keep-{partition}.txt"


def _partition_concept(ctx: Context, p: Partition) -> dict[str, Any]:
    facts = ctx.facts[p.id]
    native = not ctx.materialized("neutral", p.dataset)
    keep = p.keep if p.keep is not None else (min(facts.keeps) if len(facts.keeps) == 1 else 1)
    dropout = ctx.flex_rate(p.dataset, "neutral")
    keep_file = ctx.abs(keep_file_name(p.id)) if native and facts.keep_entries else ""
    text = _text(ctx, keep=keep, dropout=dropout, keep_file=keep_file)
    variations = max(8, facts.max_neutral_lines) if ctx.text_random() else 1
    flip = bool(p.flip) or ctx.plan.image_policy.mirror == "always_random"
    return concept(
        ctx,
        name=p.id,
        path=ctx.abs(ctx.folder(p)),
        flip=flip,
        repeats=p.repeats,
        loss_weight=p.loss_weight,
        text=text,
        text_variations=variations,
    )


def keep_files(ctx: Context) -> dict[str, str]:
    """keep-<partition>.txt (native dropout only): unique, sorted, one entry a line."""
    out = {}
    for p in ctx.written():
        entries = ctx.facts[p.id].keep_entries
        if entries and not ctx.materialized("neutral", p.dataset):
            out[keep_file_name(p.id)] = "".join(f"{e}\n" for e in sorted(entries))
    return out


def samples(ctx: Context) -> str:
    return json_text(
        [
            {
                "__version": upstream.ONETRAINER_SAMPLE_VERSION,
                "enabled": True,
                "prompt": s.prompt,
                "negative_prompt": s.negative_prompt,
                "height": s.height,
                "width": s.width,
                "seed": s.seed,
                "random_seed": False,
                "diffusion_steps": s.steps,
                "cfg_scale": float(s.scale),
            }
            for s in ctx.plan.samples
        ]
    )


def config(
    ctx: Context, *, concepts: str, method: str, embedding: dict[str, Any] | None = None
) -> dict[str, Any]:
    plan = ctx.plan
    out: dict[str, Any] = {
        "__version": upstream.ONETRAINER_TRAIN_VERSION,
        "model_type": MODEL_TYPES[plan.base_model.family],
        "training_method": method,
        "base_model_name": plan.base_model.diffusers_ref or plan.base_model.source_ref,
        "resolution": str(plan.image_policy.resolution),
        "aspect_ratio_bucketing": True,
        "latent_caching": plan.method.cache_latents,
        "concept_file_name": ctx.abs(concepts),
        "sample_definition_file_name": ctx.abs("onetrainer/samples.json"),
        "workspace_dir": ctx.abs("onetrainer/workspace"),
        "cache_dir": ctx.abs("onetrainer/cache"),
        "output_model_destination": ctx.abs(f"output/{ctx.output_name()}.safetensors"),
        "dropout_probability": float(plan.caption_policy.caption_dropout_rate),
        "epochs": plan.method.epochs,
        "batch_size": plan.method.batch_size,
        "learning_rate": float(plan.method.learning_rate),
    }
    if embedding is not None:
        out["embedding"] = embedding
    return out


def launchers(ctx: Context, config_path: str, up: str) -> tuple[str, str]:
    head = f"# Baggintag {ctx.plan.app_version} · Nerogar/OneTrainer {UPSTREAM['onetrainer']} · {ctx.plan.session_id}\n"  # noqa: E501
    sh = (
        "#!/bin/sh\n" + head + "# Needs ONETRAINER (a OneTrainer checkout, its venv active).\n"
        "set -eu\n"
        f'BUNDLE="$(cd "$(dirname "$0")/{up}" && pwd)"\n'
        'python3 "$BUNDLE/scripts/relocate.py" "$BUNDLE"\n'
        ': "${ONETRAINER:?set ONETRAINER to your OneTrainer checkout}"\n'
        'cd "$ONETRAINER"\n'
        f'python "$ONETRAINER/scripts/train.py" --config-path "$BUNDLE/{config_path}" "$@"\n'
    )
    ps1 = (
        head + '$ErrorActionPreference = "Stop"\n'
        f'$Bundle = (Resolve-Path (Join-Path $PSScriptRoot "{up}")).Path -replace "\\\\", "/"\n'
        'python "$Bundle/scripts/relocate.py" "$Bundle"\n'
        'if (-not $env:ONETRAINER) { throw "set ONETRAINER to your OneTrainer checkout" }\n'
        "Set-Location $env:ONETRAINER\n"
        f'python "$env:ONETRAINER/scripts/train.py" --config-path "$Bundle/{config_path}" @args\n'
    )
    return sh, ps1


def files(ctx: Context) -> dict[str, str]:
    sh, ps1 = launchers(ctx, "onetrainer/config.json", "..")
    out = {
        "onetrainer/concepts.json": json_text([_partition_concept(ctx, p) for p in ctx.written()]),
        "onetrainer/samples.json": samples(ctx),
        "onetrainer/config.json": json_text(
            config(ctx, concepts="onetrainer/concepts.json", method=METHODS[ctx.plan.method.kind])
        ),
        "onetrainer/train.sh": sh,
        "onetrainer/train.ps1": ps1,
    }
    out.update(keep_files(ctx))
    return out


def ti_files(ctx: Context, token: str, *, max_lines: int, keep: int) -> dict[str, str]:
    ti = ctx.plan.textual_inversion
    assert ti is not None
    text = _text(ctx, keep=max(1, keep), dropout=ctx.flex_rate(None, "ti_onetrainer"), keep_file="")
    variations = max(8, max_lines) if ctx.text_random() else 1
    flip = ctx.plan.image_policy.mirror != "never"
    item = concept(
        ctx,
        name=f"ti-{token}",
        path=ctx.abs(f"ti/{token}/onetrainer"),
        flip=flip,
        repeats=ti.repeats,
        loss_weight=1.0,
        text=text,
        text_variations=variations,
    )
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"baggintag:{ctx.plan.session_id}")
    embedding = {
        "__version": upstream.onetrainer.ONETRAINER_EMBEDDING_VERSION,
        "placeholder": token,
        "token_count": ti.num_vectors,
        "initial_embedding_text": ti.init_word,
        "uuid": str(uuid.uuid5(namespace, token)),
    }
    cfg = config(
        ctx, concepts=f"ti/{token}/onetrainer_concepts.json", method="EMBEDDING", embedding=embedding
    )
    return {
        f"ti/{token}/onetrainer_concepts.json": json_text([item]),
        f"ti/{token}/onetrainer_config.json": json_text(cfg),
    }
