"""Builders for the training page tests: signed-in clients with training permissions and the
editor's POST body."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission, User

from apps.tags.models import TagType
from apps.training.models import BaseModelProfile, TrainingSession
from apps.training.services.checks import default_policy


def grant_training(user: User) -> User:
    """Every training permission (the curators group does not carry them yet)."""
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="training"))
    return User.objects.get(pk=user.pk)


def editor_data(
    *,
    datasets: list[dict[str, Any]],
    base: str = "sd15",
    policies: dict[str, dict[str, Any]] | None = None,
    session: TrainingSession | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The editor form's body: session fields, dataset rows (`ds-`), one policy row per type (`pol-`)."""
    profile = BaseModelProfile.objects.get(slug=base)
    data: dict[str, Any] = {
        "name": "Mychar LoRA",
        "slug": "",
        "description": "",
        "base_model": profile.pk,
        "targets": ["kohya", "onetrainer"],
        "mapping_profile": "",
        "seed": 1234,
        "target_root": "/srv/train/mychar",
        "method": "lora",
        "rank": 16,
        "alpha": 8,
        "epochs": 10,
        "batch_size": 1,
        "learning_rate": "0.0001",
        "cache_latents": "on",
        "mixed_precision": "fp16",
        "alpha_background": "#ffffff",
        "resolution": "",
        "bucket_min": "",
        "bucket_max": "",
        "bucket_step": "",
        "images": "bucket",
        "crop": "center",
        "mirror": "never",
        "swap_directional": "on",
        "min_source_side": 0,
        "max_aspect": 0,
        "shuffle": "on",
        "caption_dropout_rate": 0,
        "underscores_to_spaces": "",
        "max_tokens": "",
        "materialize_mode": "auto",
        "materialize_variants": 12,
        "prefix_mode": "exact",
        "kohya_per_type_dropout": "",
        "description_weights": "",
    }
    if session is not None:
        data.update({"name": session.name, "slug": session.slug})
    data.update(fields)
    data["ds-TOTAL_FORMS"] = len(datasets)
    # the page counts the saved rows as initial forms (an unchanged extra row counts as blank)
    data["ds-INITIAL_FORMS"] = session.datasets.count() if session is not None else 0
    for n, row in enumerate(datasets):
        values = {"role": "train", "repeats": 1, "loss_weight": 1.0, "balance": "", **row}
        for key, value in values.items():
            data[f"ds-{n}-{key}"] = value
    types = list(TagType.objects.order_by("pk"))
    data["pol-TOTAL_FORMS"] = len(types)
    data["pol-INITIAL_FORMS"] = len(types)
    for n, tag_type in enumerate(types):
        values = {"tag_type": tag_type.key, **default_policy(tag_type, profile)}
        values.update((policies or {}).get(tag_type.key, {}))
        for key, value in values.items():
            if key == "atomic":
                if value:
                    data[f"pol-{n}-atomic"] = "on"
                continue
            data[f"pol-{n}-{key}"] = value
    return data


def ti_form(source, **over):  # type: ignore[no-untyped-def]
    data = {
        "name": "Mychar TI",
        "slug": "",
        "token": "mychartok",
        "init_word": "person",
        "num_vectors": 2,
        "learnable": "object",
        "prompting": "captions",
        "base_model": BaseModelProfile.objects.get(slug="sd15").pk,
        "dataset": source.pk,
        "subset": "",
        "query": "",
        "resolution": "",
        "repeats": 1,
        "seed": 1234,
        "targets": ["kohya", "a1111"],
        "target_root": "",
    }
    data.update(over)
    return data


def profile_form(**over):  # type: ignore[no-untyped-def]
    data = {
        "name": "My SD1 mix",
        "slug": "my-sd1-mix",
        "description": "",
        "kind": "checkpoint",
        "family": "sd1",
        "prediction": "epsilon",
        "resolution": 512,
        "bucket_min": 256,
        "bucket_max": 1024,
        "bucket_step": 64,
        "onetrainer_quantum": 8,
        "max_tokens": 75,
        "clip_skip": 2,
        "booru_text": "on",
        "source_kind": "file",
        "source_ref": "/models/mix.safetensors",
        "source_sha256": "",
        "diffusers_ref": "",
        "vocabulary": "",
        "mapping_profile": "",
        "supported_trainers": ["kohya", "onetrainer"],
    }
    data.update(over)
    return data
