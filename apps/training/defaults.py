"""The shipped base-model profiles (docs/training.md#base-models), seeded by migration 0002 and
restored after every `migrate`/`flush` (post_migrate), like the tags app's default types."""

from __future__ import annotations

from typing import Any

ALL = ["kohya", "onetrainer", "diffusers", "a1111"]
PROFILES = [
    {
        "slug": "sd15",
        "name": "Stable Diffusion 1.5",
        "family": "sd1",
        "resolution": 512,
        "bucket_min": 256,
        "bucket_max": 1024,
        "onetrainer_quantum": 8,
        "source_kind": "hub",
        "source_ref": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "diffusers_ref": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "booru_text": False,
        "supported_trainers": ALL,
    },
    {
        "slug": "sd2-768-v",
        "name": "Stable Diffusion 2.1 (768, v-prediction)",
        "family": "sd2",
        "prediction": "v_prediction",
        "v_parameterization": True,
        "resolution": 768,
        "bucket_min": 384,
        "bucket_max": 1536,
        "onetrainer_quantum": 8,
        "source_kind": "hub",
        "source_ref": "stabilityai/stable-diffusion-2-1",
        "diffusers_ref": "stabilityai/stable-diffusion-2-1",
        "booru_text": False,
        "supported_trainers": ALL,
    },
    {
        "slug": "sd2-base",
        "name": "Stable Diffusion 2.1 base (512)",
        "family": "sd2-base",
        "resolution": 512,
        "bucket_min": 256,
        "bucket_max": 1024,
        "onetrainer_quantum": 8,
        "source_kind": "hub",
        "source_ref": "stabilityai/stable-diffusion-2-1-base",
        "diffusers_ref": "stabilityai/stable-diffusion-2-1-base",
        "booru_text": False,
        "supported_trainers": ALL,
    },
    {
        "slug": "sdxl",
        "name": "Stable Diffusion XL 1.0",
        "family": "sdxl",
        "resolution": 1024,
        "bucket_min": 512,
        "bucket_max": 2048,
        "onetrainer_quantum": 64,
        "source_kind": "hub",
        "source_ref": "stabilityai/stable-diffusion-xl-base-1.0",
        "diffusers_ref": "stabilityai/stable-diffusion-xl-base-1.0",
        "booru_text": False,
        "supported_trainers": ["kohya", "onetrainer", "diffusers"],
    },
    {
        "slug": "sdxl-anime-booru",
        "name": "SDXL anime fine-tune (booru tags, score tags first)",
        "family": "sdxl",
        "resolution": 1024,
        "bucket_min": 512,
        "bucket_max": 2048,
        "onetrainer_quantum": 64,
        "clip_skip": 2,
        "score_tags_prefix": True,
        "booru_text": True,
        "source_kind": "file",
        "source_ref": "models/anime-xl.safetensors",
        "diffusers_ref": "",
        "supported_trainers": ["kohya", "onetrainer"],
    },
    {
        "slug": "sd1-furry-e621",
        "name": "SD 1.x furry fine-tune (e621 tags)",
        "description": "Example fine-tune: set its vocabulary to your e621 vocabulary so sessions map tags into it.",  # noqa: E501
        "family": "sd1",
        "resolution": 512,
        "bucket_min": 256,
        "bucket_max": 1024,
        "onetrainer_quantum": 8,
        "clip_skip": 1,
        "booru_text": True,
        "source_kind": "file",
        "source_ref": "models/furry-sd1.safetensors",
        "diffusers_ref": "",
        "supported_trainers": ["kohya", "onetrainer", "a1111"],
    },
    {
        "slug": "wd-tagger-convnext",
        "name": "WD tagger (ConvNeXt) training set",
        "description": "Images plus a multi-label CSV in the selected_tags.csv convention.",
        "kind": "tagger",
        "family": "sd1",
        "resolution": 448,
        "bucket_min": 448,
        "bucket_max": 448,
        "bucket_step": 64,
        "booru_text": False,
        "source_kind": "hub",
        "source_ref": "SmilingWolf/wd-convnext-tagger-v3",
        "diffusers_ref": "",
        "supported_trainers": ["wd-tagger"],
    },
]


def base_models_ensure(*, profile_model: Any = None) -> None:
    """Create the shipped profiles that are missing (never changes existing rows)."""
    if profile_model is None:
        from apps.training.models import BaseModelProfile

        profile_model = BaseModelProfile
    for values in PROFILES:
        values = dict(values)
        slug = values.pop("slug")
        profile_model.objects.get_or_create(slug=slug, defaults={**values, "seeded": True})
