"""The export plan: everything a bundle holds, as plain values (docs/training.md#plan).

`services/plan.py` builds a `Plan` from the database (session → snapshots → items, tags through
the mapping profile, tag types → caption policy); `logic/` renders captions and predicts buckets
from these values; `bundle/` writes the files. Nothing here touches the database, so the renderers
and the writer are tested on hand-made plans.

Vocabulary follows docs/training.md (zones, partitions, renderers, materialisation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

Zone = Literal["prefix", "flex", "suffix", "excluded"]
Role = Literal["train", "regularization"]
Family = Literal["sd1", "sd2", "sd2-base", "sdxl"]
Trainer = Literal["kohya", "onetrainer", "diffusers", "a1111"]
# Caption renderings: one caption file kind per consumer (docs/training.md#renderers).
Renderer = Literal["kohya", "neutral", "diffusers", "ti_kohya", "ti_onetrainer", "ti_a1111"]
Mirror = Literal["never", "always_random", "per_item"]
Crop = Literal["center", "random", "focus"]


@dataclass(frozen=True)
class TypePolicy:
    """How one tag type's items enter captions."""

    key: str
    zone: Zone = "flex"
    zone_order: int = 0
    drop_rate: float = 0.0  # share of captions without the item (flex: trainer side when native)
    atomic: bool = False  # a group: members move and drop as one
    budget_priority: int = 0  # flex: lower is trimmed first when over the token budget
    whole_drop_rate: float = 0.0  # descriptions: share of lines without one


@dataclass(frozen=True)
class CaptionPolicy:
    types: dict[str, TypePolicy]
    underscores_to_spaces: bool = True
    escape_parentheses: bool = False
    shuffle: bool = True  # flex items shuffle (natively where the trainer can)
    caption_dropout_rate: float = 0.0
    alternates: dict[str, int] = field(default_factory=dict)  # description set name → weight
    materialize_mode: Literal["auto", "always", "never"] = "auto"
    variants: int = 12  # N materialised lines
    max_tokens: int = 75  # kohya budget (75, 150, 225); every other renderer: 75
    prefix_mode: Literal["exact", "merged"] = "exact"
    kohya_per_type_dropout: Literal["", "wildcard"] = ""
    swap_directional: bool = True  # mirrored copies swap left/right tags


@dataclass(frozen=True)
class CaptionEntry:
    """One caption item: a tag, a group (members joined) or nothing else; descriptions live apart."""

    text: str  # the tag's name in the target vocabulary, already rendered (spaces, escaping)
    type: str  # TypePolicy key
    key: str  # decision key: "t:<text>" for a tag, "g:<members joined ', '>" for a group
    rank: float = 0.0  # file order inside a zone: curated position, or -confidence
    members: tuple[str, ...] = ()  # a group's member texts; empty for a plain tag


@dataclass(frozen=True)
class ItemCaption:
    """What an item's captions are made of, before any renderer runs."""

    item_id: str  # "i" + 12 hex of the source sha256, "-m" suffix for a mirrored copy
    entries: tuple[CaptionEntry, ...]
    descriptions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # set name → texts


@dataclass(frozen=True)
class Rendered:
    """One renderer's caption for one image file."""

    lines: tuple[str, ...]  # each a whole caption, no newline inside
    keep: int | None = None  # OneTrainer keep_tags_count K (neutral renderings), else None
    materialized: bool = False
    trimmed: int = 0  # flex items dropped to fit the token budget (summed over lines)


@dataclass(frozen=True)
class Lineage:
    media_id: int
    original_name: str
    source_url: str = ""
    artist: str = ""
    transform: tuple[str, ...] = ()  # e.g. ("exif_transpose",), ("recipe:crop…",)
    parent_media_id: int | None = None  # derived items: the item they were made from
    recipe: dict[str, Any] | None = None
    video: dict[str, Any] | None = None  # frames: {video_media_id, frame, timestamp_ms, box}


@dataclass(frozen=True)
class PlanItem:
    """One image file of the bundle (a mirrored copy is its own PlanItem with mirror_of set)."""

    id: str
    dataset: str  # dataset slug in the bundle
    partition: str
    sha256: str  # of the source media
    storage_key: str  # where `Plan.open_original` finds the source bytes
    width: int
    height: int
    format: str  # PNG, JPEG, WEBP, …
    mode: str  # RGB, RGBA, L, P, …
    has_alpha: bool
    caption: ItemCaption
    lineage: Lineage
    mirror_ok: bool = True
    mirror_of: str | None = None  # the original's id when this is a pre-flipped copy
    focus: tuple[float, float, float, float] | None = None  # normalised x0, y0, x1, y1
    weight: float = 1.0
    repeats: int = 1  # effective repeats, §8.4
    tags_drifted: bool = False  # the item's tags changed since its snapshot (reported)


@dataclass(frozen=True)
class Partition:
    """What kohya configures as one subset and OneTrainer as one concept."""

    id: str  # "<dataset-slug>--" + components, e.g. "mychar--flip--k3", "mychar--all"
    dataset: str
    role: Role = "train"
    flip: bool | None = None  # True: flip partition, False: noflip, None: mirror != per_item
    keep: int | None = None  # K of a k<K> partition (OneTrainer exact prefix mode)
    repeats: int = 1
    loss_weight: float = 1.0
    class_tokens: str = ""
    item_count: int = 0


@dataclass(frozen=True)
class BaseModelSpec:
    family: Family
    profile: str  # profile slug
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"
    clip_skip: int = 1
    source_kind: Literal["file", "diffusers_dir", "hub"] = "file"
    source_ref: str = ""
    source_sha256: str = ""
    diffusers_ref: str | None = None  # diffusers folder or Hub id; None: diffusers cannot train it
    resolution: int = 512
    bucket_min: int = 256
    bucket_max: int = 1024
    bucket_step: int = 64
    onetrainer_quantum: int = 8
    max_tokens: int = 75
    score_tags_prefix: bool = False  # quality/rating/meta go to the prefix zone
    booru_text: bool = True  # underscores to spaces


@dataclass(frozen=True)
class ImagePolicy:
    resolution: int
    bucket_min: int
    bucket_max: int
    bucket_step: int
    no_upscale: bool = False
    resize_to_bucket: bool = True  # False: originals, the trainer buckets them itself
    min_source_side: int = 0
    max_aspect: float = 0.0  # 0: no check
    crop: Crop = "center"
    mirror: Mirror = "never"
    color_jitter: dict[str, float] | None = None
    alpha_background: str = "#ffffff"


@dataclass(frozen=True)
class MethodSpec:
    kind: Literal["lora", "finetune", "dreambooth", "textual_inversion"] = "lora"
    rank: int = 16
    alpha: int = 8
    train_text_encoder: bool = False
    batch_size: int = 1
    epochs: int = 10
    learning_rate: float = 0.0001
    mixed_precision: str = "fp16"
    cache_latents: bool = True
    cache_text_encoder_outputs: bool = False
    masked_loss: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    id: str  # slug in the bundle
    name: str
    role: Role = "train"
    repeats: int = 1
    loss_weight: float = 1.0
    class_tokens: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted caption-policy paths
    licence: str = ""  # the session entry's licence notes
    dataset_licence: str = ""  # the dataset's own licence notes (read live, like its name)
    snapshot: int | None = None  # snapshot number the session pinned
    description: str = ""


@dataclass(frozen=True)
class TISpec:
    token: str
    init_word: str
    num_vectors: int = 1
    prompting: Literal["captions", "object_templates", "style_templates"] = "captions"
    learnable: Literal["object", "style"] = "object"
    repeats: int = 1
    resolution: int = 512
    templates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    seed: int = 42
    steps: int = 28
    scale: float = 7.0
    sampler: str = "euler_a"


@dataclass(frozen=True)
class ExportSettings:
    target_root: str  # the bundle's absolute place on the training machine, "/"-separated
    prefix_mode: Literal["exact", "merged"] = "exact"
    bundle_layout: int = 1
    kohya_per_type_dropout: Literal["", "wildcard"] = ""
    images: Literal["bucket", "original"] = "bucket"
    kohya_masks: Literal["none", "focus"] = "none"  # loss masks from focus boxes (masks/<partition>/)


@dataclass
class Plan:
    """A whole export. `items()` yields PlanItems sorted by (partition, id) and may be called more
    than once (one pass per bundle part); it streams from the database in chunks, so a 100k-item
    plan holds no list of items."""

    session_id: str  # "sess-<pk>"
    session_name: str
    session_version: int
    created: str  # the session version's creation time, ISO 8601 UTC "…Z" (no clock read at export)
    seed: int
    app_version: str
    base_model: BaseModelSpec
    method: MethodSpec
    image_policy: ImagePolicy
    caption_policy: CaptionPolicy
    datasets: list[DatasetEntry]
    partitions: list[Partition]
    targets: list[Trainer]
    export: ExportSettings
    items: Callable[[], Iterator[PlanItem]]
    open_original: Callable[[str], IO[bytes]]  # storage_key → readable binary file
    textual_inversion: TISpec | None = None
    samples: list[Sample] = field(default_factory=list)
    item_count: int = 0
    notes: list[str] = field(default_factory=list)  # warnings found while planning (report)
    # The session's extra kohya options, written into args.toml as `[extra]` (never over a key the
    # bundle writes itself: that is an L17 error).
    kohya_extra_args: dict[str, Any] = field(default_factory=dict)
    # A preview plan (`plan_build(limit=…)`): items() yields only the first items of each dataset,
    # partition counts are the sample's, item_count the datasets' member counts.
    sampled: bool = False
