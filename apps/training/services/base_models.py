"""Custom base-model profiles (docs/training.md#base-models). Shipped profiles (`seeded`) are
protected: they cannot be deleted and only where their weights live may change."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError
from apps.mappings.models import MappingProfile
from apps.tags.models import Vocabulary
from apps.training.models import BaseModelProfile, Family, TextualInversion, TrainingSession
from apps.training.services.checks import (
    KNOWN_TARGETS,
    _by_ref,
    _full_clean,
    _int,
    bad,
    buckets_check,
    name_check,
    text_check,
)

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
TRAINERS = (*KNOWN_TARGETS, "wd-tagger")
# What a seeded profile still lets people change: where the weights are and which vocabulary
# and mapping its sessions use.
SEEDED_EDITABLE = (
    "source_kind",
    "source_ref",
    "source_sha256",
    "diffusers_ref",
    "vocabulary",
    "mapping_profile",
)
FIELDS = (
    "slug",
    "name",
    "description",
    "kind",
    "family",
    "prediction",
    "resolution",
    "bucket_min",
    "bucket_max",
    "bucket_step",
    "onetrainer_quantum",
    "max_tokens",
    "clip_skip",
    "v_parameterization",
    "score_tags_prefix",
    "booru_text",
    "source_kind",
    "source_ref",
    "source_sha256",
    "diffusers_ref",
    "vocabulary",
    "mapping_profile",
    "supported_trainers",
)
SHA256 = re.compile(r"[0-9a-f]{64}")


def _apply(profile: BaseModelProfile, fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise bad(unknown[0], "not a base-model setting.")
    for name, value in fields.items():
        if name == "vocabulary":
            profile.vocabulary = (
                None
                if value in (None, "")
                else _by_ref(Vocabulary, value, "vocabulary", "training.unknown_vocabulary")
            )
        elif name == "mapping_profile":
            profile.mapping_profile = (
                None
                if value in (None, "")
                else _by_ref(MappingProfile, value, "mapping_profile", "training.unknown_mapping")
            )
        else:
            setattr(profile, name, value)


def _check(profile: BaseModelProfile) -> None:
    profile.name = name_check("name", profile.name)
    text_check("description", profile.description)
    if not SLUG.fullmatch(profile.slug or ""):
        raise bad("slug", "lower-case letters, digits and dashes (≤ 64).", "training.bad_slug")
    if profile.slug.isdigit():
        raise bad("slug", "digits alone read as an id; add a letter.", "training.bad_slug")
    for name in ("source_ref", "diffusers_ref"):
        ref_check(name, getattr(profile, name))
    if profile.family not in Family.values:
        raise bad("family", f"one of {', '.join(Family.values)}.")
    for name in ("resolution", "bucket_min", "bucket_max", "bucket_step", "onetrainer_quantum"):
        setattr(profile, name, _int(getattr(profile, name), name, 1, 16384))
    if profile.max_tokens not in (75, 150, 225):
        raise bad("max_tokens", "75, 150 or 225.", "training.bad_max_tokens")
    profile.clip_skip = _int(profile.clip_skip, "clip_skip", 1, 12)
    if profile.kind == BaseModelProfile.Kind.CHECKPOINT:
        buckets_check(
            family=profile.family,
            resolution=profile.resolution,
            bucket_min=profile.bucket_min,
            bucket_max=profile.bucket_max,
            step=profile.bucket_step,
        )
    trainers = profile.supported_trainers
    if not isinstance(trainers, list) or not all(isinstance(t, str) for t in trainers):
        raise bad(
            "supported_trainers", f"a list of trainers ({', '.join(TRAINERS)}).", "training.unknown_target"
        )
    trainers = profile.supported_trainers = list(dict.fromkeys(trainers))
    unknown = sorted(set(trainers) - set(TRAINERS))
    if unknown:
        raise bad(
            "supported_trainers", f"unknown trainer(s) {', '.join(unknown)}.", "training.unknown_target"
        )
    if (profile.kind == BaseModelProfile.Kind.TAGGER) != ("wd-tagger" in trainers) or (
        "wd-tagger" in trainers and len(trainers) > 1
    ):
        raise bad(
            "supported_trainers",
            "a tagger profile supports wd-tagger alone, and only a tagger profile supports it.",
            "training.unsupported_target",
        )
    if profile.source_sha256 and not SHA256.fullmatch(profile.source_sha256):
        raise bad("source_sha256", "64 lower-case hex digits, or empty.")
    if profile.family == "sd2" and profile.prediction != BaseModelProfile.Prediction.V:
        raise bad("prediction", "sd2 (768) models predict v; use sd2-base for epsilon models.")
    if (
        "diffusers" in trainers
        and profile.source_kind == BaseModelProfile.SourceKind.FILE
        and not profile.diffusers_ref
    ):
        raise bad(
            "diffusers_ref",
            "diffusers needs a diffusers-format folder or Hub id; set diffusers_ref or drop diffusers.",
            "training.no_diffusers_model",
        )
    mapping = profile.mapping_profile
    vocabulary = profile.vocabulary_id
    if mapping is not None and vocabulary is not None and mapping.target_vocabulary_id != vocabulary:
        raise bad(
            "mapping_profile",
            f"profile {mapping.slug!r} maps into another vocabulary than this model's; pick a mapping "
            "profile whose target vocabulary is the model's vocabulary, or change both together.",
            "training.vocabulary_mismatch",
        )
    _full_clean(profile, exclude=["vocabulary", "mapping_profile"])


def ref_check(field: str, value: Any) -> None:
    """Where the weights live: a path or Hub id the launch scripts quote, so no quotes, `$`,
    backquotes, control characters or a trailing backslash."""
    if not isinstance(value, str):
        raise bad(field, "a path or Hub id.")
    text_check(field, value)
    if any(c in value for c in '"$`\n\r\t') or value.endswith("\\"):
        raise bad(
            field,
            "no quotes, $, backquotes, line breaks or trailing backslash (the launch scripts quote it).",
            "training.bad_text",
        )


def _save(profile: BaseModelProfile) -> None:
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError as exc:
        raise ConflictError("A base model with this slug exists.", code="training.duplicate") from exc


@transaction.atomic
def base_model_create(**fields: Any) -> BaseModelProfile:
    profile = BaseModelProfile()
    fields.setdefault("supported_trainers", ["kohya", "onetrainer"])
    _apply(profile, fields)
    _check(profile)
    _save(profile)
    return profile


def base_model_check(*, profile: BaseModelProfile | None, **fields: Any) -> None:
    """The checks `base_model_create` (profile None) or `base_model_update` run, without saving:
    the admin's form calls it so a bad value is a form error (docs/training.md#admin)."""
    if profile is None or profile.pk is None:
        fresh = BaseModelProfile()
        fields.setdefault("supported_trainers", ["kohya", "onetrainer"])
    else:
        fresh = BaseModelProfile.objects.get(pk=profile.pk)
        _seeded_check(fresh, fields)
    _apply(fresh, fields)
    _check(fresh)
    if BaseModelProfile.objects.filter(slug=fresh.slug).exclude(pk=fresh.pk).exists():
        raise ConflictError("A base model with this slug exists.", code="training.duplicate")


def _seeded_check(locked: BaseModelProfile, fields: dict[str, Any]) -> None:
    if locked.seeded:
        frozen = sorted(
            name
            for name in set(fields) - set(SEEDED_EDITABLE)
            if fields[name] != getattr(locked, name, fields[name])
        )
        if frozen:
            raise ConflictError(
                f"{locked.slug} is a shipped profile: {', '.join(frozen)} cannot change. "
                "Create a custom profile for other values.",
                code="training.seeded_profile",
            )


@transaction.atomic
def base_model_update(*, profile: BaseModelProfile, **fields: Any) -> BaseModelProfile:
    locked = BaseModelProfile.objects.select_for_update().get(pk=profile.pk)
    _seeded_check(locked, fields)
    _apply(locked, fields)
    _check(locked)
    _save(locked)
    return locked


def base_model_delete(*, profile: BaseModelProfile) -> None:
    if profile.seeded:
        raise ConflictError(
            f"{profile.slug} is a shipped profile and cannot be deleted.", code="training.seeded_profile"
        )
    used = (
        TrainingSession.objects.filter(base_model=profile).count()
        + TextualInversion.objects.filter(base_model=profile).count()
    )
    if used:
        raise ConflictError(
            f"{used} training session(s) or TI set(s) use {profile.slug}; "
            "move them to another base model first.",
            code="training.base_model_in_use",
        )
    profile.delete()
