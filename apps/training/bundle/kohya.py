"""kohya-ss/sd-scripts files: dataset.toml, args.toml, sample_prompts.json, the TI TOML
(docs/export-bundle.md#kohya)."""

from __future__ import annotations

import shlex
from typing import Any

from apps.training import upstream
from apps.training.bundle.context import UPSTREAM, Context
from apps.training.bundle.errors import BundleError, finding
from apps.training.bundle.portable import json_text, toml_text
from apps.training.plan import Partition


def script_for(family: str, method: str) -> str:
    """The sd-scripts training script for a model family and method (§6.2); always one that
    `upstream.KOHYA_ARGS` knows."""
    sdxl = family == "sdxl"
    if method == "textual_inversion":
        name = "sdxl_train_textual_inversion.py" if sdxl else "train_textual_inversion.py"
    elif method == "lora":
        name = "sdxl_train_network.py" if sdxl else "train_network.py"
    else:
        name = "sdxl_train.py" if sdxl else "train_db.py"
    if name not in upstream.KOHYA_ARGS:
        raise ValueError(f"sd-scripts has no script {name!r} at the pinned commit")
    return name


def script(ctx: Context, *, ti: bool = False) -> str:
    """The sd-scripts training script of the plan (or of its Textual Inversion set)."""
    return script_for(ctx.plan.base_model.family, "textual_inversion" if ti else ctx.plan.method.kind)


def header(ctx: Context) -> list[str]:
    plan = ctx.plan
    return [f"Baggintag {plan.app_version} · kohya-ss/sd-scripts {UPSTREAM['kohya']} · {plan.session_id}"]


def _general() -> dict[str, Any]:
    return {
        "caption_extension": ".caption",
        "enable_wildcard": True,
        "keep_tokens_separator": "|||",
        "secondary_separator": ";;;",
    }


def _subset(ctx: Context, partition: Partition) -> dict[str, Any]:
    image = ctx.plan.image_policy
    policy = ctx.policy(partition.dataset)
    subset: dict[str, Any] = {"image_dir": ctx.abs(ctx.folder(partition)), "num_repeats": partition.repeats}
    if partition.role == "regularization":
        subset["is_reg"] = True
    if policy.shuffle:
        subset["shuffle_caption"] = True
    rate = ctx.flex_rate(partition.dataset, "kohya")
    if rate > 0:
        subset["caption_tag_dropout_rate"] = float(rate)
    if partition.flip or image.mirror == "always_random":
        subset["flip_aug"] = True
    if image.color_jitter:
        subset["color_aug"] = True
    if image.crop == "random":
        subset["random_crop"] = True
    if ctx.masked(partition):  # P14: every subset of the block has one (reg subsets are an L15 error)
        subset["conditioning_data_dir"] = ctx.abs(f"masks/{partition.id}")
    return subset


def dataset_toml(ctx: Context) -> str:
    plan, image = ctx.plan, ctx.plan.image_policy
    block: dict[str, Any] = {
        "resolution": image.resolution,
        "batch_size": plan.method.batch_size,
        "enable_bucket": True,
        "min_bucket_reso": image.bucket_min,
        "max_bucket_reso": image.bucket_max,
        "bucket_reso_steps": image.bucket_step,
    }
    if image.no_upscale:
        block["bucket_no_upscale"] = True
    if plan.caption_policy.caption_dropout_rate > 0:
        block["caption_dropout_rate"] = float(plan.caption_policy.caption_dropout_rate)
    block["subsets"] = [_subset(ctx, p) for p in ctx.written()]
    masked = [ctx.masked(p) for p in ctx.written()]
    if any(masked) and not all(masked):  # L15: a masked block is ControlNet-style, no reg subsets
        raise BundleError(
            [
                finding(
                    ctx,
                    "L15",
                    "kohya loss masks cannot go with regularisation datasets; drop the masks or the reg sets",
                    path="kohya/dataset.toml",
                )
            ]
        )
    return toml_text({"general": _general(), "datasets": [block]}, header(ctx))


def ti_dataset_toml(ctx: Context, token: str) -> str:
    """The TI set's TOML: no caption-dropout key anywhere (TI scripts reject them)."""
    ti = ctx.plan.textual_inversion
    assert ti is not None
    block: dict[str, Any] = {
        "resolution": ti.resolution,
        "batch_size": ctx.plan.method.batch_size,
        "enable_bucket": False,
        "subsets": [{"image_dir": ctx.abs(f"ti/{token}/captioned"), "num_repeats": ti.repeats}],
    }
    if ctx.plan.caption_policy.shuffle:
        block["subsets"][0]["shuffle_caption"] = True
    return toml_text({"general": _general(), "datasets": [block]}, header(ctx))


def _text_random(ctx: Context) -> bool:
    return ctx.text_random() or ctx.plan.caption_policy.caption_dropout_rate > 0


def args_toml(ctx: Context) -> str:
    plan, method, base = ctx.plan, ctx.plan.method, ctx.plan.base_model
    model: dict[str, Any] = {"pretrained_model_name_or_path": base.source_ref}
    if base.family in ("sd2", "sd2-base"):
        model["v2"] = True
    if base.family == "sd2" or base.prediction == "v_prediction":
        model["v_parameterization"] = True
    if base.clip_skip > 1:
        model["clip_skip"] = base.clip_skip
    data: dict[str, Any] = {"dataset_config": ctx.abs("kohya/dataset.toml")}
    if plan.caption_policy.max_tokens > 75:
        data["max_token_length"] = plan.caption_policy.max_tokens
    out: dict[str, Any] = {"model": model, "data": data}
    if method.kind == "lora":
        out["network"] = {
            "network_module": "networks.lora",
            "network_dim": method.rank,
            "network_alpha": float(method.alpha),
            "network_train_unet_only": not method.train_text_encoder,
        }
    augment = plan.image_policy.color_jitter is not None or plan.image_policy.crop == "random"
    train: dict[str, Any] = {
        "output_dir": ctx.abs("output"),
        "output_name": ctx.output_name(),
        "save_model_as": "safetensors",
        "train_batch_size": method.batch_size,
        "max_train_epochs": method.epochs,
        "learning_rate": float(method.learning_rate),
        "seed": plan.seed,
        "mixed_precision": method.mixed_precision,
    }
    if method.cache_latents and not augment:
        train["cache_latents"] = True
    if method.cache_text_encoder_outputs and not _text_random(ctx) and not method.train_text_encoder:
        train["cache_text_encoder_outputs"] = True
    if plan.export.kohya_masks == "focus":
        train["masked_loss"] = True
    out["train"] = train
    if plan.samples:
        out["sample"] = {"sample_prompts": ctx.abs("kohya/sample_prompts.json"), "sample_every_n_epochs": 1}
    if plan.kohya_extra_args:
        owned = {key for section in out.values() for key in section}
        clash = sorted(owned & set(plan.kohya_extra_args))
        if clash:  # L17: the bundle's own value would be silently replaced (sections are flattened)
            raise BundleError(
                [
                    finding(
                        ctx,
                        "L17",
                        f"extra argument {key!r} is set by the bundle; remove it",
                        path="kohya/args.toml",
                    )
                    for key in clash
                ]
            )
        out["extra"] = dict(sorted(plan.kohya_extra_args.items()))
    text = toml_text(out, header(ctx))
    name = script(ctx)
    problems = upstream.kohya_args_problems(text, name)
    if problems:  # L17: an option the script does not know would be ignored without a word
        raise BundleError([finding(ctx, "L17", p, path="kohya/args.toml") for p in problems])
    return text


def sample_prompts(ctx: Context) -> str:
    rows = [
        {
            "prompt": s.prompt,
            "negative_prompt": s.negative_prompt,
            "width": s.width,
            "height": s.height,
            "seed": s.seed,
            "sample_steps": s.steps,
            "scale": float(s.scale),
            "sample_sampler": s.sampler,
        }
        for s in ctx.plan.samples
    ]
    return json_text(rows)


def launch_sh(ctx: Context, *, args: str, script_name: str, up: str) -> str:
    """A POSIX launcher: finds the bundle from its own path, relocates when moved, runs sd-scripts."""
    return (
        "#!/bin/sh\n"
        f"# Baggintag {ctx.plan.app_version} · kohya-ss/sd-scripts {UPSTREAM['kohya']} · {ctx.plan.session_id}\n"  # noqa: E501
        "# Needs SD_SCRIPTS (an sd-scripts checkout, its venv active); BASE_MODEL overrides the model.\n"
        "set -eu\n"
        f'BUNDLE="$(cd "$(dirname "$0")/{up}" && pwd)"\n'
        'python3 "$BUNDLE/scripts/relocate.py" "$BUNDLE"\n'
        ': "${SD_SCRIPTS:?set SD_SCRIPTS to your kohya-ss/sd-scripts checkout}"\n'
        'set -- "$@"\n'
        'if [ -n "${BASE_MODEL:-}" ]; then set -- --pretrained_model_name_or_path "$BASE_MODEL" "$@"; fi\n'
        'cd "$SD_SCRIPTS"\n'
        f'accelerate launch --num_cpu_threads_per_process 1 "$SD_SCRIPTS/{script_name}" '
        f'{args} "$@"\n'
    )


def launch_ps1(ctx: Context, *, config: str, script_name: str, up: str) -> str:
    return (
        f"# Baggintag {ctx.plan.app_version} · kohya-ss/sd-scripts {UPSTREAM['kohya']} · {ctx.plan.session_id}\n"  # noqa: E501
        "# Needs $env:SD_SCRIPTS (an sd-scripts checkout, its venv active); $env:BASE_MODEL overrides the model.\n"  # noqa: E501
        '$ErrorActionPreference = "Stop"\n'
        f'$Bundle = (Resolve-Path (Join-Path $PSScriptRoot "{up}")).Path -replace "\\\\", "/"\n'
        'python "$Bundle/scripts/relocate.py" "$Bundle"\n'
        'if (-not $env:SD_SCRIPTS) { throw "set SD_SCRIPTS to your kohya-ss/sd-scripts checkout" }\n'
        "$Extra = @()\n"
        'if ($env:BASE_MODEL) { $Extra = @("--pretrained_model_name_or_path", $env:BASE_MODEL) }\n'
        "Set-Location $env:SD_SCRIPTS\n"
        f'accelerate launch --num_cpu_threads_per_process 1 "$env:SD_SCRIPTS/{script_name}" '
        f'--config_file "$Bundle/{config}" @Extra @args\n'
    )


def files(ctx: Context) -> dict[str, str]:
    """kohya/ files, relative path → text."""
    name = script(ctx)
    sh = launch_sh(ctx, args='--config_file "$BUNDLE/kohya/args.toml"', script_name=name, up="..")
    return {
        "kohya/dataset.toml": dataset_toml(ctx),
        "kohya/args.toml": args_toml(ctx),
        "kohya/sample_prompts.json": sample_prompts(ctx),
        "kohya/train.sh": sh,
        "kohya/train.ps1": launch_ps1(ctx, config="kohya/args.toml", script_name=name, up=".."),
    }


def ti_files(ctx: Context, token: str) -> dict[str, str]:
    ti = ctx.plan.textual_inversion
    assert ti is not None
    name = script(ctx, ti=True)
    base = ctx.plan.base_model
    extra = (
        f"--pretrained_model_name_or_path {shlex.quote(base.source_ref)}"
        f' --dataset_config "$BUNDLE/ti/{token}/kohya_dataset.toml" --token_string {shlex.quote(token)}'
        f" --init_word {shlex.quote(ti.init_word)} --num_vectors_per_token {ti.num_vectors}"
        " --save_model_as safetensors"
        f' --output_dir "$BUNDLE/output" --output_name {shlex.quote(token)}'
    )
    if ti.prompting == "object_templates":
        extra += " --use_object_template"
    elif ti.prompting == "style_templates":
        extra += " --use_style_template"
    extra += f" --max_train_epochs {ctx.plan.method.epochs} --learning_rate {ctx.plan.method.learning_rate!r}"
    extra += f" --seed {ctx.plan.seed} --mixed_precision {ctx.plan.method.mixed_precision}"
    sh = launch_sh(ctx, args=extra, script_name=name, up="../..")
    return {f"ti/{token}/kohya_dataset.toml": ti_dataset_toml(ctx, token), f"ti/{token}/kohya_ti.sh": sh}
