"""diffusers example-script launchers, TI launcher and A1111 notes (docs/export-bundle.md#diffusers)."""

from __future__ import annotations

import shlex

from apps.training.bundle.context import UPSTREAM, Context


def script(ctx: Context) -> str:
    family, kind = ctx.plan.base_model.family, ctx.plan.method.kind
    if family == "sdxl":
        if kind == "dreambooth":
            return "dreambooth/train_dreambooth_lora_sdxl.py"
        return (
            "text_to_image/train_text_to_image_sdxl.py"
            if kind == "finetune"
            else "text_to_image/train_text_to_image_lora_sdxl.py"
        )
    return (
        "text_to_image/train_text_to_image_lora.py"
        if kind == "lora"
        else "text_to_image/train_text_to_image.py"
    )


def _head(ctx: Context, up: str) -> str:
    model = ctx.plan.base_model.diffusers_ref or ""
    return (
        "#!/bin/sh\n"
        f"# Baggintag {ctx.plan.app_version} · huggingface/diffusers {UPSTREAM['diffusers']} · {ctx.plan.session_id}\n"  # noqa: E501
        "# Needs DIFFUSERS_EXAMPLES (diffusers' examples/ folder, its requirements installed);\n"
        "# BASE_MODEL: a diffusers-format folder or Hub id.\n"
        "set -eu\n"
        f'BUNDLE="$(cd "$(dirname "$0")/{up}" && pwd)"\n'
        'python3 "$BUNDLE/scripts/relocate.py" "$BUNDLE"\n'
        ': "${DIFFUSERS_EXAMPLES:?set DIFFUSERS_EXAMPLES to diffusers/examples}"\n'
        # The default is quoted for the shell: a stored model reference never runs as a command.
        f'if [ -z "${{BASE_MODEL:-}}" ]; then BASE_MODEL={shlex.quote(model)}; fi\n'
        ': "${BASE_MODEL:?set BASE_MODEL to a diffusers-format model}"\n'
    )


def train_script(ctx: Context) -> tuple[str, str]:
    """(file name, text) of diffusers/train_<script>.sh."""
    plan, method = ctx.plan, ctx.plan.method
    name = script(ctx)
    data = "$BUNDLE/diffusers/images" if ctx.diffusers_images() else "$BUNDLE/data"
    args = ['--pretrained_model_name_or_path "$BASE_MODEL"']
    if name.startswith("dreambooth/"):
        args += [f'--dataset_name "{data}"', "--caption_column text"]
        args += [f"--instance_prompt {shlex.quote(ctx.trigger() or 'sks')}"]
        repeats = max([p.repeats for p in ctx.written() if p.role == "train"], default=1)
        args += [f"--repeats {repeats}"]
    else:
        args += [f'--train_data_dir "{data}"', "--image_column image"]
        if name.endswith("_sdxl.py") and method.kind == "finetune":
            args += [
                "--caption_column text",
                f"--proportion_empty_prompts {plan.caption_policy.caption_dropout_rate!r}",
            ]
        else:
            args += ["--caption_column text_variants"]
    args += [f"--resolution {plan.image_policy.resolution}"]
    if plan.image_policy.crop != "random":
        args += ["--center_crop"]
    if ctx.random_flip():
        args += ["--random_flip"]
    if method.kind in ("lora", "dreambooth"):
        args += [f"--rank {method.rank}"]
    args += [
        f"--train_batch_size {method.batch_size}",
        f"--num_train_epochs {method.epochs}",
        f"--learning_rate {method.learning_rate!r}",
        f"--mixed_precision {method.mixed_precision}",
        f"--seed {plan.seed}",
        '--output_dir "$BUNDLE/output/diffusers"',
    ]
    body = 'cd "$DIFFUSERS_EXAMPLES"\n' + f'accelerate launch "$DIFFUSERS_EXAMPLES/{name}" \\\n  '
    body += " \\\n  ".join(args) + ' \\\n  "$@"\n'
    stem = name.rsplit("/", 1)[1].removesuffix(".py")
    return f"diffusers/{stem}.sh", _head(ctx, "..") + body


def ti_script(ctx: Context, token: str) -> str:
    ti = ctx.plan.textual_inversion
    assert ti is not None
    name = (
        "textual_inversion/textual_inversion_sdxl.py"
        if ctx.plan.base_model.family == "sdxl"
        else "textual_inversion/textual_inversion.py"
    )
    args = [
        '--pretrained_model_name_or_path "$BASE_MODEL"',
        f'--train_data_dir "$BUNDLE/ti/{token}/images"',
        f"--placeholder_token {shlex.quote('<' + token + '>')}",
        f"--initializer_token {shlex.quote(ti.init_word)}",
        f"--learnable_property {ti.learnable}",
        f"--num_vectors {ti.num_vectors}",
        f"--resolution {ti.resolution}",
        "--center_crop",
        f"--repeats {ti.repeats}",
        f"--learning_rate {ctx.plan.method.learning_rate!r}",
        f"--seed {ctx.plan.seed}",
        f'--output_dir "$BUNDLE/output/ti-{token}"',
    ]
    body = 'cd "$DIFFUSERS_EXAMPLES"\n' + f'accelerate launch "$DIFFUSERS_EXAMPLES/{name}" \\\n  '
    return _head(ctx, "../..") + body + " \\\n  ".join(args) + ' \\\n  "$@"\n'


def a1111_template(ctx: Context) -> str:
    ti = ctx.plan.textual_inversion
    assert ti is not None
    return "[filewords], art by [name]\n" if ti.learnable == "style" else "[name], [filewords]\n"


def a1111_settings(ctx: Context, token: str) -> str:
    ti = ctx.plan.textual_inversion
    assert ti is not None
    policy = ctx.plan.caption_policy
    drop = max([t.drop_rate for t in policy.types.values() if t.zone == "flex"], default=0.0)
    return "\n".join(
        [
            f"# A1111 Textual Inversion settings for `{token}`",
            "",
            "Train tab → Create embedding, then Train → Train embedding:",
            "",
            "| setting | value |",
            "|---|---|",
            f"| Name | `{token}` |",
            f"| Initialization text | `{ti.init_word}` |",
            f"| Number of vectors per token | {ti.num_vectors} |",
            f"| Dataset directory | `ti/{token}/captioned` (under the bundle) |",
            f"| Prompt template | `ti/{token}/a1111_template.txt` |",
            f"| Width / Height | {ti.resolution} / {ti.resolution} |",
            "| Do not resize images | off |",
            f"| Shuffle tags by ',' when creating prompts | {'on' if policy.shuffle else 'off'} |",
            f"| Drop out tags when creating prompts | {drop!r} |",
            "",
            "A1111 shuffles and drops over all of `[filewords]`; the token stays in the template.",
            "No SDXL embeddings train in A1111: use kohya or OneTrainer for SDXL.",
            "",
        ]
    )
