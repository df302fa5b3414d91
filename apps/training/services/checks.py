"""Input checks of training sessions (docs/training.md#sessions): each refusal is a 4xx with a
`training.*` code and a message naming the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError

from apps.core.exceptions import DomainError
from apps.datasets.models import Dataset, DatasetGroup, Requirements, Snapshot, Subset
from apps.datasets.selectors import dataset_members, subset_members
from apps.mappings.models import MappingProfile
from apps.tags.models import TagType
from apps.training.models import (
    BaseModelProfile,
    CaptionTypePolicy,
    SampleDefinition,
    TrainingSession,
    TrainingSessionDataset,
)
from apps.training.services.inputs import (
    SLUG,
    bad,
    derived_slug_check,
    finite,
    jitter_check,
    name_check,
    rate,
    root_check,
    slug_from,
    text_check,
)

__all__ = ["SLUG", "bad", "derived_slug_check", "finite", "rate", "slug_from"]
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
KNOWN_TARGETS = ("kohya", "onetrainer", "diffusers", "a1111")
SESSION_TARGETS = ("kohya", "onetrainer", "diffusers", "wd-tagger")
TAGGER_TARGET = "wd-tagger"
MAX_TOKENS = (75, 150, 225)
SCORE_TYPES = ("quality", "rating", "meta")
MAX_DATASETS = 50
MAX_LOSS_WEIGHT = 100.0
MAX_LEARNING_RATE = 10.0
MAX_ASPECT = 100.0
MAX_SCALE = 100.0
INT_MAX = 2**31 - 1
MAX_SAMPLES = 50
# Fields of TrainingSession a caller may set (the rest are kept by the services).
FIELDS = (
    "name",
    "slug",
    "description",
    "seed",
    "targets",
    "method",
    "rank",
    "alpha",
    "train_text_encoder",
    "batch_size",
    "epochs",
    "learning_rate",
    "mixed_precision",
    "cache_latents",
    "cache_text_encoder_outputs",
    "masked_loss",
    "extra_args",
    "resolution",
    "bucket_min",
    "bucket_max",
    "bucket_step",
    "no_upscale",
    "images",
    "min_source_side",
    "max_aspect",
    "crop",
    "mirror",
    "mirror_block_tags",
    "color_jitter",
    "alpha_background",
    "underscores_to_spaces",
    "escape_parentheses",
    "shuffle",
    "caption_dropout_rate",
    "materialize_mode",
    "materialize_variants",
    "max_tokens",
    "prefix_mode",
    "kohya_per_type_dropout",
    "swap_directional",
    "kohya_masks",
    "target_root",
)
DATASET_FIELDS = (
    "slug",
    "role",
    "repeats",
    "balance",
    "loss_weight",
    "class_tokens",
    "overrides",
    "licence_notes",
)
POLICY_FIELDS = ("zone", "zone_order", "drop_rate", "atomic", "budget_priority", "whole_drop_rate")
SAMPLE_FIELDS = ("prompt", "negative_prompt", "width", "height", "seed", "steps", "scale", "sampler")


# --- checks -------------------------------------------------------------------------------------


def buckets_check(*, family: str, resolution: int, bucket_min: int, bucket_max: int, step: int) -> None:
    """§9 L08: min ≤ resolution ≤ max, all multiples of the step; step 64 (sd1/sd2) or 32 (sdxl)."""
    unit = 32 if family == "sdxl" else 64
    if step <= 0 or step % unit:
        raise bad(
            "bucket_step",
            f"{step} must be a positive multiple of {unit} for {family}.",
            "training.bad_buckets",
        )
    for name, value in (("resolution", resolution), ("bucket_min", bucket_min), ("bucket_max", bucket_max)):
        if value <= 0 or value % step:
            raise bad(
                name,
                f"{value} must be a positive multiple of the bucket step {step}.",
                "training.bad_buckets",
            )
    if not bucket_min <= resolution <= bucket_max:
        raise bad(
            "bucket_min",
            f"buckets {bucket_min}..{bucket_max} must bracket the resolution {resolution}.",
            "training.bad_buckets",
        )


def targets_check(
    targets: Any, base_model: BaseModelProfile, allowed: Iterable[str] = SESSION_TARGETS
) -> list[str]:
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise bad(
            "targets", f"a non-empty list of trainers ({', '.join(allowed)}).", "training.unknown_target"
        )
    unknown = sorted(set(targets) - set(allowed))
    if unknown:
        raise bad(
            "targets",
            f"unknown trainer(s) {', '.join(unknown)}; choose from {', '.join(allowed)}.",
            "training.unknown_target",
        )
    unsupported = sorted(set(targets) - set(base_model.supported_trainers or []))
    if unsupported:
        raise bad(
            "targets",
            f"{base_model.slug} cannot be trained with {', '.join(unsupported)} "
            f"(it supports {', '.join(base_model.supported_trainers) or 'none'}).",
            "training.unsupported_target",
        )
    return sorted(set(targets), key=list(allowed).index)


def mapping_check(profile: MappingProfile | None, base_model: BaseModelProfile) -> None:
    if profile is None or base_model.vocabulary_id is None:
        return
    if profile.target_vocabulary_id != base_model.vocabulary_id:
        raise bad(
            "mapping_profile",
            f"profile {profile.slug!r} maps into another vocabulary than {base_model.slug!r} was trained "
            "on; pick a profile whose target vocabulary is the base model's.",
            "training.vocabulary_mismatch",
        )


def _requirements_fit(dataset: Dataset, base_model: BaseModelProfile) -> None:
    """A dataset whose own size rules keep every image below the model's smallest bucket."""
    req = Requirements.objects.filter(dataset=dataset).first()
    if req is None:
        return
    smallest = base_model.bucket_min
    for field in ("exact_width", "exact_height", "max_width", "max_height"):
        value = getattr(req, field)
        if value is not None and value < smallest:
            raise bad(
                "datasets",
                f"dataset {dataset.slug!r} requires {field} = {value}, below {base_model.slug}'s smallest "
                f"bucket side {smallest}; change the dataset's requirements or the base model.",
                "training.dataset_incompatible",
            )


def _member_count_nonzero(entry: TrainingSessionDataset) -> bool:
    if entry.snapshot_id is not None:
        snapshot = Snapshot.objects.get(pk=entry.snapshot_id)
        if entry.subset_id is None:
            return snapshot.member_count > 0
        return snapshot.parts.filter(subset_id=entry.subset_id, member_count__gt=0).exists()
    if entry.subset is not None:
        return subset_members(subset=entry.subset).exists()
    assert entry.dataset is not None
    return dataset_members(dataset=entry.dataset).exists()


def _dataset_entry(
    raw: Mapping[str, Any], position: int, base_model: BaseModelProfile
) -> TrainingSessionDataset:
    """An unsaved entry from input, checked (the dataset exists, has members, fits the model)."""
    field = f"datasets[{position}]"
    if not isinstance(raw, Mapping):
        raise bad(field, "an object with dataset or group.")
    text_check(field, raw)
    unknown = sorted(set(raw) - {"dataset", "subset", "group", "snapshot", *DATASET_FIELDS})
    if unknown:
        raise bad(field, f"unknown keys {', '.join(unknown)}.")
    entry = TrainingSessionDataset(position=position)
    ref, group_ref = raw.get("dataset"), raw.get("group")
    if (ref is None) == (group_ref is None):
        raise bad(field, "exactly one of dataset and group.")
    if ref is not None:
        entry.dataset = _by_ref(Dataset, ref, f"{field}.dataset", "training.unknown_dataset")
    else:
        entry.group = _by_ref(DatasetGroup, group_ref, f"{field}.group", "training.unknown_dataset")
        if raw.get("subset") is not None or raw.get("snapshot") is not None:
            raise bad(field, "a group entry takes no subset or snapshot.")
    if raw.get("subset") is not None:
        subset = _by_ref(Subset, raw["subset"], f"{field}.subset", "training.unknown_dataset")
        if subset.dataset_id != entry.dataset_id:
            raise bad(f"{field}.subset", f"subset {subset.slug!r} belongs to another dataset.")
        entry.subset = subset
    if raw.get("snapshot") is not None:
        snapshot = Snapshot.objects.filter(pk=_int(raw["snapshot"], f"{field}.snapshot")).first()
        if snapshot is None or snapshot.dataset_id != entry.dataset_id:
            raise bad(f"{field}.snapshot", "not a snapshot of this dataset.", "training.bad_snapshot")
        entry.snapshot = snapshot
    for name in DATASET_FIELDS:
        if name in raw:
            setattr(entry, name, raw[name])
    for name, limit in (
        ("slug", 40),
        ("role", 16),
        ("balance", 10),
        ("class_tokens", 200),
        ("licence_notes", 20000),
    ):
        value = getattr(entry, name)
        if not isinstance(value, str) or len(value) > limit:
            raise bad(f"{field}.{name}", f"text of at most {limit} characters.")
    if any(c in entry.class_tokens for c in "\n\r\t"):
        raise bad(f"{field}.class_tokens", "one line: no line breaks or tabs.", "training.bad_text")
    if isinstance(entry.loss_weight, bool):
        raise bad(f"{field}.loss_weight", "a number is needed.", "training.not_finite")
    entry.loss_weight = finite(f"{field}.loss_weight", entry.loss_weight)
    if not 0 < entry.loss_weight <= MAX_LOSS_WEIGHT:
        raise bad(f"{field}.loss_weight", f"must be above 0, at most {MAX_LOSS_WEIGHT}.")
    entry.repeats = _int(entry.repeats, f"{field}.repeats", 1, 10_000)
    if entry.role not in TrainingSessionDataset.Role.values:
        raise bad(f"{field}.role", f"one of {', '.join(TrainingSessionDataset.Role.values)}.")
    if entry.balance not in TrainingSessionDataset.Balance.values:
        raise bad(f"{field}.balance", "empty (fixed repeats) or equalize.")
    if not isinstance(entry.overrides, dict):
        raise bad(f"{field}.overrides", "an object of dotted caption-policy paths.")
    weights = entry.overrides.get("item_weights", {})
    if not isinstance(weights, dict) or not all(
        isinstance(k, str)
        and k.isascii()
        and k.isdigit()
        and len(k) <= 10
        and 0 < int(k) <= INT_MAX
        and isinstance(w, int | float)
        and not isinstance(w, bool)
        for k, w in weights.items()
    ):
        raise bad(f"{field}.overrides.item_weights", "an object of item ids to weights.")
    for key, weight in weights.items():
        if not 0 < finite(f"{field}.overrides.item_weights.{key}", weight) <= 100:
            raise bad(f"{field}.overrides.item_weights.{key}", "a weight above 0, at most 100.")
    entry.overrides = overrides_check(entry.overrides, f"{field}.overrides")
    if entry.slug and (not SLUG.fullmatch(entry.slug) or "--" in entry.slug):
        raise bad(
            f"{field}.slug",
            "lower-case letters, digits and single dashes, starting with a letter.",
            "training.bad_slug",
        )
    datasets = [entry.dataset] if entry.dataset is not None else _group_datasets(entry.group)
    if not datasets:
        raise bad(field, "the group holds no dataset.", "training.empty_dataset")
    for dataset in datasets:
        _requirements_fit(dataset, base_model)
    if entry.dataset is not None and not _member_count_nonzero(entry):
        what = (
            f"subset {entry.subset.slug!r}" if entry.subset is not None else f"dataset {entry.dataset.slug!r}"
        )
        raise bad(field, f"{what} has no members; add images or pick another.", "training.empty_dataset")
    if entry.group is not None and not any(dataset_members(dataset=d).exists() for d in datasets):
        raise bad(
            field, f"the datasets of group {entry.group.slug!r} have no members.", "training.empty_dataset"
        )
    return entry


def _group_datasets(group: DatasetGroup | None) -> list[Dataset]:
    from apps.datasets.selectors.groups import group_datasets

    return [] if group is None else [flat.dataset for flat in group_datasets(group=group)]


def entry_slugs(entries: Iterable[TrainingSessionDataset]) -> list[str]:
    """The bundle ids the entries stand for (a group stands for each of its datasets)."""
    out: list[str] = []
    for entry in entries:
        if entry.dataset is not None:
            base = entry.slug or entry.dataset.slug
            out.append(
                base + (f"-{entry.subset.slug}" if entry.subset is not None and not entry.slug else "")
            )
        else:
            out.extend(d.slug for d in _group_datasets(entry.group))
    return out


def _int(value: Any, field: str, low: int = 0, high: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(field, "a whole number is needed.")
    try:
        number = int(value)
    except ValueError as exc:
        raise bad(field, "a whole number is needed.") from exc
    if not low <= number <= high:
        raise bad(field, f"{number} is outside {low}..{high}.")
    return number


def _by_ref(model: Any, ref: Any, field: str, code: str) -> Any:
    """A row by id or slug, else 400 naming the field."""
    rows = model.objects.all()
    found = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = rows.filter(pk=ref).first() if 0 < ref <= 2**31 - 1 else None
    elif isinstance(ref, str) and ref:
        if ref.isascii() and ref.isdigit():
            found = rows.filter(pk=int(ref)).first() if len(ref) <= 10 and int(ref) <= 2**31 - 1 else None
        else:
            found = rows.filter(slug=ref).first()
    if found is None:
        raise bad(field, f"no {model._meta.verbose_name} {ref!r}.", code)
    return found


def policies_check(raw: Any) -> dict[str, dict[str, Any]]:
    """Per tag type key: the policy fields given (checked); unknown types and zones are 400s."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise bad("type_policies", "an object: tag type key → policy.")
    text_check("type_policies", raw)
    known = set(TagType.objects.filter(key__in=list(raw)).values_list("key", flat=True))
    out: dict[str, dict[str, Any]] = {}
    for key, values in raw.items():
        field = f"type_policies.{key}"
        if key not in known:
            raise bad(field, f"no tag type {key!r}.", "training.unknown_type")
        if not isinstance(values, Mapping):
            raise bad(field, "an object of policy fields.")
        unknown = sorted(set(values) - set(POLICY_FIELDS))
        if unknown:
            raise bad(field, f"unknown keys {', '.join(unknown)}.")
        clean = dict(values)
        if "zone" in clean and clean["zone"] not in CaptionTypePolicy.Zone.values:
            raise bad(f"{field}.zone", f"one of {', '.join(CaptionTypePolicy.Zone.values)}.")
        for name in ("drop_rate", "whole_drop_rate"):
            if name in clean:
                clean[name] = rate(f"{field}.{name}", clean[name])
        if "zone_order" in clean:
            clean["zone_order"] = _int(clean["zone_order"], f"{field}.zone_order", 0, 32767)
        if "budget_priority" in clean:
            clean["budget_priority"] = _int(
                clean["budget_priority"], f"{field}.budget_priority", -32768, 32767
            )
        if "atomic" in clean and not isinstance(clean["atomic"], bool):
            raise bad(f"{field}.atomic", "true or false.")
        out[key] = clean
    return out


def _weights_check(raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise bad("description_weights", "an object: description set → weight.")
    out = {}
    for name, weight in raw.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise bad("description_weights", "set names are 1 to 100 characters.")
        text_check("description_weights", name)
        out[name] = _int(weight, f"description_weights.{name}", 0, 1000)
    return out


def _samples_check(raw: Any) -> list[SampleDefinition]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_SAMPLES:
        raise bad("samples", f"a list of at most {MAX_SAMPLES} sample prompts.")
    out = []
    for n, values in enumerate(raw):
        field = f"samples[{n}]"
        if not isinstance(values, Mapping):
            raise bad(field, "an object with a prompt.")
        text_check(field, values)
        unknown = sorted(set(values) - set(SAMPLE_FIELDS))
        if unknown:
            raise bad(field, f"unknown keys {', '.join(unknown)}.")
        sample = SampleDefinition(position=n, **values)
        for name, limit in (("prompt", 2000), ("negative_prompt", 2000), ("sampler", 32)):
            value = getattr(sample, name)
            if not isinstance(value, str) or len(value) > limit:
                raise bad(f"{field}.{name}", f"text of at most {limit} characters.")
        if not sample.prompt.strip():
            raise bad(f"{field}.prompt", "a prompt is needed.")
        sample.seed = _int(sample.seed, f"{field}.seed", 0, 2**31 - 1)
        sample.steps = _int(sample.steps, f"{field}.steps", 1, 1000)
        if isinstance(sample.scale, bool):
            raise bad(f"{field}.scale", "a number is needed.", "training.not_finite")
        sample.scale = finite(f"{field}.scale", sample.scale)
        if not 0 <= sample.scale <= MAX_SCALE:
            raise bad(f"{field}.scale", f"{sample.scale} is outside 0..{MAX_SCALE:g}.")
        for name in ("width", "height"):
            size = _int(getattr(sample, name), f"{field}.{name}", 64, 8192)
            if size % 8:
                raise bad(f"{field}.{name}", f"{size} must be a multiple of 8.")
        out.append(sample)
    return out


def _full_clean(row: Any, exclude: list[str]) -> None:
    try:
        row.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        fields = exc.message_dict
        field, messages = next(iter(fields.items()))
        raise DomainError(
            f"{field}: {messages[0]}", code="training.invalid", details={"fields": fields}
        ) from exc


def session_check(session: TrainingSession) -> None:
    """Every rule on the session row itself (its children are checked as they are parsed)."""
    session.name = name_check("name", session.name)
    text_check("description", session.description)
    if not SLUG.fullmatch(session.slug or "") or "--" in session.slug:
        raise bad(
            "slug",
            "lower-case letters, digits and single dashes, starting with a letter (≤ 40).",
            "training.bad_slug",
        )
    base = session.base_model
    session.targets = targets_check(session.targets, base)
    tagger = base.kind == BaseModelProfile.Kind.TAGGER
    if tagger != (TAGGER_TARGET in session.targets) or (tagger and len(session.targets) > 1):
        raise bad(
            "targets",
            f"{TAGGER_TARGET} is the only target of a tagger profile and needs one "
            f"({base.slug} is a {base.get_kind_display().lower()}).",
            "training.unsupported_target",
        )
    mapping_check(session.mapping_profile, base)
    session.learning_rate = finite("learning_rate", session.learning_rate)
    if not 0 < session.learning_rate <= MAX_LEARNING_RATE:
        raise bad("learning_rate", f"must be above 0, at most {MAX_LEARNING_RATE:g}.")
    session.max_aspect = finite("max_aspect", session.max_aspect)
    if session.max_aspect != 0 and not 1 <= session.max_aspect <= MAX_ASPECT:
        raise bad("max_aspect", f"0 (no check) or 1 to {MAX_ASPECT:g}.")
    session.caption_dropout_rate = rate("caption_dropout_rate", session.caption_dropout_rate)
    if session.max_tokens is not None and session.max_tokens not in MAX_TOKENS:
        raise bad("max_tokens", f"one of {', '.join(map(str, MAX_TOKENS))}.", "training.bad_max_tokens")
    if session.kohya_per_type_dropout not in ("", "wildcard"):
        raise bad("kohya_per_type_dropout", "empty or wildcard.")
    if session.kohya_masks not in TrainingSession.KohyaMasks.values:
        raise bad("kohya_masks", "none or focus.")
    if not COLOR.fullmatch(session.alpha_background or ""):
        raise bad("alpha_background", "a colour like #ffffff.")
    if not isinstance(session.extra_args, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in session.extra_args.items()
    ):
        raise bad("extra_args", "an object of kohya argument names to plain values.")
    text_check("extra_args", session.extra_args)
    for key, value in session.extra_args.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", key):
            raise bad("extra_args", f"{key[:40]!r} is not a kohya argument name (letters, digits, _).")
        if isinstance(value, float):
            finite(f"extra_args.{key}", value)
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise bad(f"extra_args.{key}", "a whole number that fits 64 bits.")
        elif isinstance(value, str) and len(value) > 2000:
            raise bad(f"extra_args.{key}", "text of at most 2000 characters.")
    blocks = session.mirror_block_tags
    if (
        not isinstance(blocks, list)
        or len(blocks) > 200
        or not all(isinstance(t, str) and 0 < len(t) <= 200 for t in blocks)
    ):
        raise bad("mirror_block_tags", "a list of at most 200 tag names.")
    text_check("mirror_block_tags", blocks)
    if session.color_jitter is not None:
        session.color_jitter = jitter_check(session.color_jitter)
    session.target_root = root_check("target_root", session.target_root)
    if not 1 <= session.materialize_variants <= 64:
        raise bad("materialize_variants", "1 to 64 lines.")
    buckets_check(
        family=base.family,
        resolution=session.resolution or base.resolution,
        bucket_min=session.bucket_min or base.bucket_min,
        bucket_max=session.bucket_max or base.bucket_max,
        step=session.bucket_step or base.bucket_step,
    )
    _full_clean(session, exclude=["base_model", "mapping_profile", "created_by"])


# --- defaults -----------------------------------------------------------------------------------


def default_policy(tag_type: TagType, base: BaseModelProfile) -> dict[str, Any]:
    """A type's policy from its TagType (caption zone, order, dropout, exported) and the model."""
    zone = tag_type.caption_zone if tag_type.exported else CaptionTypePolicy.Zone.EXCLUDED
    if base.score_tags_prefix and tag_type.key in SCORE_TYPES and tag_type.exported:
        zone = CaptionTypePolicy.Zone.PREFIX
    return {
        "zone": zone,
        "zone_order": tag_type.caption_order,
        "drop_rate": tag_type.default_dropout / 10000 if tag_type.droppable else 0.0,
        "atomic": tag_type.key == "group",
        "budget_priority": 0,
        "whole_drop_rate": 0.0,
    }


_CHOICES = {
    "zone": tuple(CaptionTypePolicy.Zone.values),
    "materialize_mode": ("auto", "always", "never"),
    "prefix_mode": ("exact", "merged"),
    "kohya_per_type_dropout": ("", "wildcard"),
}
_BOOLS = ("atomic", "underscores_to_spaces", "escape_parentheses", "shuffle", "swap_directional")
_RATES = ("drop_rate", "whole_drop_rate", "caption_dropout_rate")
_INTS = {"zone_order": (0, 32767), "budget_priority": (-32768, 32767), "variants": (1, 64)}
TOP_OVERRIDES = (
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


def overrides_check(raw: dict[str, Any], field: str) -> dict[str, Any]:
    """A dataset's overrides: `types.<type>.<policy field>` and whole-policy fields with values
    of their kind, plus `item_weights` (checked above); anything else is a 400 naming it."""
    out: dict[str, Any] = {}
    known = set(TagType.objects.values_list("key", flat=True))
    for key, value in raw.items():
        where = f"{field}.{key}"
        parts = key.split(".")
        if key == "item_weights":
            out[key] = value
            continue
        if len(parts) == 3 and parts[0] == "types":
            if parts[1] not in known:
                raise bad(where, f"no tag type {parts[1]!r}.", "training.bad_override")
            name = parts[2]
            if name not in POLICY_FIELDS:
                raise bad(where, f"{name!r} is not a type policy field.", "training.bad_override")
        elif len(parts) == 1 and key in TOP_OVERRIDES:
            name = key
        else:
            raise bad(
                where,
                "not a caption-policy path (types.<type>.<field> or a policy field).",
                "training.bad_override",
            )
        if name in _BOOLS:
            if not isinstance(value, bool):
                raise bad(where, "true or false.", "training.bad_override")
        elif name in _RATES:
            if isinstance(value, bool):
                raise bad(where, "a number.", "training.bad_override")
            value = rate(where, value)
        elif name in _INTS:
            value = _int(value, where, *_INTS[name])
        elif name == "max_tokens":
            if value not in MAX_TOKENS or isinstance(value, bool):
                raise bad(where, "75, 150 or 225.", "training.bad_max_tokens")
        elif value not in _CHOICES[name]:
            raise bad(where, f"one of {', '.join(map(repr, _CHOICES[name]))}.", "training.bad_override")
        out[key] = value
    return out
