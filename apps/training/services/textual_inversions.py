"""Textual Inversion sets (docs/training.md#ti): create, edit, delete, and their plan.

A TI set learns one token from an image set (a dataset, a subset or a query). Its plan has one
dataset and the `TISpec`; captions come from the items' tags under the tag types' default
policies (the renderers put the token first, §4.5).
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.exceptions import ConflictError, DomainError
from apps.datasets.models import Dataset, Subset
from apps.search.query import QueryError, parse, query_resolve
from apps.tags.models import TagType
from apps.training.logic import tokens
from apps.training.models import BaseModelProfile, TextualInversion
from apps.training.plan import Plan, TISpec
from apps.training.services.checks import (
    SLUG,
    _by_ref,
    _int,
    bad,
    default_policy,
    derived_slug_check,
    name_check,
    root_check,
    slug_from,
    targets_check,
    text_check,
)

TOKEN = re.compile(r"[a-z][a-z0-9]{2,39}")
TI_TARGETS = ("kohya", "onetrainer", "diffusers", "a1111")
FIELDS = (
    "name",
    "slug",
    "token",
    "init_word",
    "num_vectors",
    "learnable",
    "prompting",
    "templates",
    "query",
    "resolution",
    "repeats",
    "seed",
    "targets",
    "target_root",
)


def token_check(token: str, init_word: str, num_vectors: int) -> None:
    """§9 L06: the token's shape, and neither it nor its vector names (token1…, token_1…) known
    to the CLIP vocabulary; the init word one CLIP token (apps/training/logic/tokens.py)."""
    if not TOKEN.fullmatch(token or ""):
        raise bad(
            "token", "3 to 40 lower-case letters and digits, starting with a letter.", "training.bad_token"
        )
    if not (init_word or "").strip():
        raise bad("init_word", "a word the token starts from.", "training.bad_init_word")
    if not init_word.strip().isalnum():
        raise bad(
            "init_word",
            f"{init_word.strip()[:60]!r} is not one word; use letters and digits only (it goes on the "
            "trainer's command line).",
            "training.bad_init_word",
        )
    names = [
        token,
        *(f"{token}{n}" for n in range(1, num_vectors)),
        *(f"{token}_{n}" for n in range(1, num_vectors)),
    ]
    known = [name for name in names if tokens.in_vocab(name)]
    if known:
        raise bad(
            "token",
            f"{', '.join(known)} {'is' if len(known) == 1 else 'are'} already in the CLIP vocabulary; pick a "
            "made-up token (e.g. add digits or letters).",
            "training.token_collision",
        )
    if not tokens.is_single_token(init_word.strip()):
        raise bad(
            "init_word",
            f"{init_word!r} is several CLIP tokens; pick a one-token word.",
            "training.bad_init_word",
        )


def _check(ti: TextualInversion) -> None:
    ti.name = name_check("name", ti.name)
    if not SLUG.fullmatch(ti.slug or "") or "--" in ti.slug:
        raise bad(
            "slug",
            "lower-case letters, digits and single dashes, starting with a letter.",
            "training.bad_slug",
        )
    base = ti.base_model
    if base.kind != BaseModelProfile.Kind.CHECKPOINT:
        raise bad("base_model", f"{base.slug} is a tagger target.", "training.bad_base_model")
    ti.num_vectors = _int(ti.num_vectors, "num_vectors", 1, 75)
    ti.repeats = _int(ti.repeats, "repeats", 1, 10_000)
    token_check(ti.token, ti.init_word, ti.num_vectors)
    ti.targets = targets_check(ti.targets, base, TI_TARGETS)
    if "a1111" in ti.targets and base.family == "sdxl":
        raise bad(
            "targets", "AUTOMATIC1111 cannot train SDXL embeddings (P51).", "training.unsupported_target"
        )
    if ti.learnable not in TextualInversion.Learnable.values:
        raise bad("learnable", "object or style.")
    if ti.prompting not in TextualInversion.Prompting.values:
        raise bad("prompting", f"one of {', '.join(TextualInversion.Prompting.values)}.")
    if not isinstance(ti.templates, list) or not all(isinstance(t, str) and "{}" in t for t in ti.templates):
        raise bad("templates", 'a list of templates, each with "{}" where the token goes.')
    text_check("templates", ti.templates)
    text_check("query", ti.query)
    sources = [ti.dataset_id is not None, bool(ti.query)]
    if sum(sources) != 1:
        raise bad(
            "dataset", "exactly one of dataset (optionally with a subset) and query.", "training.no_datasets"
        )
    if ti.subset is not None and ti.subset.dataset_id != ti.dataset_id:
        raise bad("subset", "the subset belongs to another dataset.")
    if ti.query:
        try:
            query_resolve(parse(ti.query))
        except QueryError as exc:
            raise bad("query", exc.message, "training.bad_query") from exc
    resolution = ti.resolution or base.resolution
    if resolution % 64 or not 64 <= resolution <= 4096:
        raise bad("resolution", "a multiple of 64 from 64 to 4096.", "training.bad_buckets")
    ti.target_root = root_check("target_root", ti.target_root)
    if not math.isfinite(float(ti.seed)):
        raise bad("seed", "a number.", "training.not_finite")
    _members_nonempty(ti)


def _members_nonempty(ti: TextualInversion) -> None:
    from apps.datasets.selectors import dataset_members, subset_members
    from apps.search.query import search_queryset

    if ti.query:
        members = search_queryset(q=ti.query, viewer=None)
    elif ti.subset is not None:
        members = subset_members(subset=ti.subset)
    else:
        assert ti.dataset is not None
        members = dataset_members(dataset=ti.dataset)
    if not members.exists():
        raise bad("dataset", "the image set is empty; add images or pick another.", "training.empty_dataset")


def _apply(ti: TextualInversion, fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - {*FIELDS, "base_model", "dataset", "subset"})
    if unknown:
        raise bad(unknown[0], "not a Textual Inversion setting.")
    if "base_model" in fields:
        ti.base_model = _by_ref(
            BaseModelProfile, fields.pop("base_model"), "base_model", "training.unknown_base_model"
        )
    if "dataset" in fields:
        ref = fields.pop("dataset")
        ti.dataset = None if ref is None else _by_ref(Dataset, ref, "dataset", "training.unknown_dataset")
    if "subset" in fields:
        ref = fields.pop("subset")
        ti.subset = None if ref is None else _by_ref(Subset, ref, "subset", "training.unknown_dataset")
    for name, value in fields.items():
        setattr(ti, name, value)
    if ti.query:
        ti.query = ti.query.strip()


def _save(ti: TextualInversion) -> None:
    try:
        with transaction.atomic():
            ti.save()
    except IntegrityError as exc:
        raise ConflictError(
            "A Textual Inversion set with this name or slug exists.", code="training.duplicate"
        ) from exc


@transaction.atomic
def ti_create(
    *, name: str, base_model: Any, token: str, init_word: str, actor: Any = None, **fields: Any
) -> TextualInversion:
    ti = TextualInversion(name=name, token=token, init_word=init_word)
    if not fields.get("slug") and isinstance(name, str):
        fields["slug"] = slug_from(name)
        derived_slug_check(fields["slug"], name)
    _apply(ti, {"base_model": base_model, **fields})
    if not ti.targets:
        ti.targets = [
            t for t in ("kohya", "onetrainer", "diffusers") if t in ti.base_model.supported_trainers
        ]
    if not ti.target_root:
        ti.target_root = f"/srv/train/{ti.slug}"
    ti.created_by = actor if getattr(actor, "is_authenticated", False) else None
    _check(ti)
    _save(ti)
    return ti


@transaction.atomic
def ti_update(*, ti: TextualInversion, **fields: Any) -> TextualInversion:
    """Change the given settings; a change bumps the version its exports record."""
    locked = TextualInversion.objects.select_for_update().get(pk=ti.pk)
    before = {name: getattr(locked, name) for name in FIELDS} | {
        "base": locked.base_model_id,
        "dataset": locked.dataset_id,
        "subset": locked.subset_id,
    }
    _apply(locked, dict(fields))
    _check(locked)
    after = {name: getattr(locked, name) for name in FIELDS} | {
        "base": locked.base_model_id,
        "dataset": locked.dataset_id,
        "subset": locked.subset_id,
    }
    if after != before:
        locked.version += 1
    _save(locked)
    return locked


def ti_delete(*, ti: TextualInversion) -> None:
    from apps.training.services.exports import export_files_delete

    with transaction.atomic():
        paths = list(ti.exports.exclude(bundle_path="").values_list("bundle_path", flat=True))
        ti.delete()
    for path in paths:
        export_files_delete(path)


def ti_settings(ti: TextualInversion) -> dict[str, Any]:
    """The TI set in the settings shape plans are built from (sessions.frozen)."""
    base = ti.base_model
    entry: dict[str, Any] = {
        "dataset": ti.dataset_id,
        "subset": ti.subset_id,
        "group": None,
        "snapshot": None,
        "query": ti.query,
        "slug": ti.slug,
        "role": "train",
        "repeats": ti.repeats,
        "balance": "",
        "loss_weight": 1.0,
        "class_tokens": "",
        "overrides": {},
        "licence_notes": "",
    }
    policies = {t.key: default_policy(t, base) for t in TagType.objects.order_by("pk")}
    resolution = ti.resolution or base.resolution
    return {
        "name": ti.name,
        "seed": ti.seed,
        "targets": list(ti.targets),
        "method": "textual_inversion",
        "rank": 0,
        "alpha": 0,
        "train_text_encoder": False,
        "batch_size": 1,
        "epochs": 10,
        "learning_rate": 0.005,
        "mixed_precision": "fp16",
        "cache_latents": True,
        "cache_text_encoder_outputs": False,
        "masked_loss": False,
        "extra_args": {},
        "resolution": resolution,
        "bucket_min": resolution,
        "bucket_max": resolution,
        "bucket_step": 64,
        "no_upscale": False,
        "images": "bucket",
        "min_source_side": 0,
        "max_aspect": 0.0,
        "crop": "focus",
        "mirror": "never",
        "mirror_block_tags": [],
        "color_jitter": None,
        "alpha_background": "#ffffff",
        "underscores_to_spaces": None,
        "escape_parentheses": False,
        "shuffle": True,
        "caption_dropout_rate": 0.0,
        "materialize_mode": "auto",
        "materialize_variants": 12,
        "max_tokens": 75,
        "prefix_mode": "exact",
        "kohya_per_type_dropout": "",
        "kohya_masks": "none",
        "swap_directional": True,
        "target_root": ti.target_root,
        "base_model": base.slug,
        "mapping_profile": base.mapping_profile.slug if base.mapping_profile is not None else None,
        "datasets": [entry],
        "type_policies": policies,
        "description_weights": {},
        "samples": [],
    }


def ti_plan_build(
    ti: TextualInversion,
    *,
    freeze: bool = True,
    actor: Any = None,
    limit: int | None = None,
    frozen: list[int] | None = None,
) -> Plan:
    """The TI set's plan; `limit` as in `plan.plan_build` (previews)."""
    from apps.training.services.plan import plan_from_settings

    s = ti_settings(ti)
    spec = TISpec(
        token=ti.token,
        init_word=ti.init_word.strip(),
        num_vectors=ti.num_vectors,
        prompting=ti.prompting,  # type: ignore[arg-type]
        learnable=ti.learnable,  # type: ignore[arg-type]
        repeats=ti.repeats,
        resolution=s["resolution"],
        templates=tuple(ti.templates),
    )
    return plan_from_settings(
        s,
        session_id=f"ti-{ti.pk}",
        version=ti.version,
        created=ti.created_at,
        freeze=freeze,
        actor=actor,
        textual_inversion=spec,
        limit=limit,
        frozen=frozen,
    )


__all__ = ["DomainError", "ti_create", "ti_delete", "ti_plan_build", "ti_update"]
