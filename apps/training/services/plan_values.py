"""Plan values from settings (docs/training.md#plan): caption text, mirroring and keep counts,
and the settings → plan dataclasses."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from apps.training.logic import captions, mirror
from apps.training.models import BaseModelProfile
from apps.training.plan import (
    BaseModelSpec,
    CaptionPolicy,
    ImagePolicy,
    ItemCaption,
    MethodSpec,
    TypePolicy,
)

# Caption-policy fields a dataset may override as a whole (dotted paths without `types.`).
POLICY_OVERRIDES = (
    "underscores_to_spaces",
    "escape_parentheses",
    "shuffle",
    "caption_dropout_rate",
    "materialize_mode",
    "variants",
    "max_tokens",
    "prefix_mode",
    "kohya_per_type_dropout",
    "swap_directional",
)
_SPACES = re.compile(r"\s+")

# --- text ---------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Whitespace collapsed (newlines too), trimmed."""
    return _SPACES.sub(" ", text).strip()


def tag_text(name: str, *, underscores: bool, keep_underscore: bool, escape: bool) -> str:
    """A tag's caption text per the profile: underscores to spaces, optional `(`/`)` escaping."""
    text = name.replace("_", " ") if underscores and not keep_underscore else name
    if escape:
        text = text.replace("(", "\\(").replace(")", "\\)")
    return clean_text(text)


# --- mirroring and keep counts ------------------------------------------------------------------


def mirror_decide(
    caption: ItemCaption, *, block_tags: list[str], swap_allowed: bool
) -> tuple[bool, ItemCaption | None]:
    """(mirror_ok, the mirrored copy's caption or None): items holding a blocking tag never flip;
    items with directional tags (left/right) flip only as pre-flipped copies whose captions are
    swapped, and not at all without `swap_directional` (apps/training/logic/mirror.py)."""
    if mirror.mirror_blocked(caption, block_tags):
        return False, None
    swapped = mirror.swap_directional(caption)
    if swapped == caption:
        return True, None
    if not swap_allowed:
        return False, None
    return True, swapped


def policy_for(policy: CaptionPolicy, overrides: dict[str, Any]) -> CaptionPolicy:
    """A dataset's caption policy: the session's with its dotted overrides
    (`types.general.drop_rate`, `shuffle`, …); other keys (`item_weights`) are not policy."""
    for path, value in sorted(overrides.items()):
        parts = path.split(".")
        if parts[0] == "types" and len(parts) == 3:
            types = dict(policy.types)
            current = types.get(parts[1], TypePolicy(key=parts[1]))
            types[parts[1]] = replace(current, **{parts[2]: value})
            policy = replace(policy, types=types)
        elif len(parts) == 1 and parts[0] in POLICY_OVERRIDES:
            policy = replace(policy, **{parts[0]: value})
    return policy


def keep_for(caption: ItemCaption, policy: CaptionPolicy, seed: int) -> int:
    """K of an image's OneTrainer partition: the neutral renderer's keep count
    (apps/training/logic/captions.py; docs/export-captions.md)."""
    return int(captions.render(caption, policy, "neutral", seed=seed).keep or 0)


# --- settings → plan values ---------------------------------------------------------------------


def _base_spec(base: BaseModelProfile) -> BaseModelSpec:
    return BaseModelSpec(
        family=base.family,  # type: ignore[arg-type]
        profile=base.slug,
        prediction=base.prediction,  # type: ignore[arg-type]
        clip_skip=base.clip_skip,
        source_kind=base.source_kind,  # type: ignore[arg-type]
        source_ref=base.source_ref,
        source_sha256=base.source_sha256,
        diffusers_ref=base.diffusers_ref or None,
        resolution=base.resolution,
        bucket_min=base.bucket_min,
        bucket_max=base.bucket_max,
        bucket_step=base.bucket_step,
        onetrainer_quantum=base.onetrainer_quantum,
        max_tokens=base.max_tokens,
        score_tags_prefix=base.score_tags_prefix,
        booru_text=base.booru_text,
    )


def _caption_policy(s: dict[str, Any], base: BaseModelProfile) -> CaptionPolicy:
    types = {
        key: TypePolicy(
            key=key,
            zone=p["zone"],
            zone_order=p["zone_order"],
            drop_rate=p["drop_rate"],
            atomic=p["atomic"],
            budget_priority=p["budget_priority"],
            whole_drop_rate=p["whole_drop_rate"],
        )
        for key, p in sorted(s["type_policies"].items())
    }
    underscores = s["underscores_to_spaces"]
    tagger = base.kind == "tagger"
    return CaptionPolicy(
        types=types,
        # A tagger's labels are tag names as they are (docs/export-bundle.md#wd-tagger).
        underscores_to_spaces=not tagger and (base.booru_text if underscores is None else bool(underscores)),
        escape_parentheses=not tagger and s["escape_parentheses"],
        shuffle=s["shuffle"],
        caption_dropout_rate=s["caption_dropout_rate"],
        alternates={k: v for k, v in sorted(s["description_weights"].items()) if v > 0},
        materialize_mode=s["materialize_mode"],
        variants=s["materialize_variants"],
        max_tokens=s["max_tokens"] or base.max_tokens,
        prefix_mode=s["prefix_mode"],
        kohya_per_type_dropout=s["kohya_per_type_dropout"],
        swap_directional=s["swap_directional"],
    )


def _image_policy(s: dict[str, Any], base: BaseModelProfile) -> ImagePolicy:
    return ImagePolicy(
        resolution=s["resolution"] or base.resolution,
        bucket_min=s["bucket_min"] or base.bucket_min,
        bucket_max=s["bucket_max"] or base.bucket_max,
        bucket_step=s["bucket_step"] or base.bucket_step,
        no_upscale=s["no_upscale"],
        resize_to_bucket=s["images"] == "bucket",
        min_source_side=s["min_source_side"],
        max_aspect=s["max_aspect"],
        crop=s["crop"],
        mirror=s["mirror"],
        color_jitter=s["color_jitter"],
        alpha_background=s["alpha_background"],
    )


def _method(s: dict[str, Any]) -> MethodSpec:
    return MethodSpec(
        kind=s["method"],
        rank=s["rank"],
        alpha=s["alpha"],
        train_text_encoder=s["train_text_encoder"],
        batch_size=s["batch_size"],
        epochs=s["epochs"],
        learning_rate=s["learning_rate"],
        mixed_precision=s["mixed_precision"],
        cache_latents=s["cache_latents"],
        cache_text_encoder_outputs=s["cache_text_encoder_outputs"],
        masked_loss=s["masked_loss"],
    )
