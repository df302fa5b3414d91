"""Training sessions, base-model profiles, Textual Inversion sets and their exports
(docs/training.md). What an export writes is described by `apps/training/plan.py`;
`services/plan.py` builds it from these rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel


class Family(models.TextChoices):
    SD1 = "sd1", "Stable Diffusion 1.x"
    SD2 = "sd2", "Stable Diffusion 2.x (768, v-prediction)"
    SD2_BASE = "sd2-base", "Stable Diffusion 2.x base (512)"
    SDXL = "sdxl", "Stable Diffusion XL"


class Trainer(models.TextChoices):
    KOHYA = "kohya", "kohya sd-scripts"
    ONETRAINER = "onetrainer", "OneTrainer"
    DIFFUSERS = "diffusers", "diffusers examples"
    A1111 = "a1111", "AUTOMATIC1111 (Textual Inversion)"


def default_mirror_block_tags() -> list[str]:
    """Tags whose items must not be flipped (text reads backwards, marks change sides)."""
    return [
        "text",
        "english text",
        "japanese text",
        "signature",
        "watermark",
        "logo",
        "artist name",
        "speech bubble",
    ]


class BaseModelProfile(BaseModel):
    """What a base model needs: family, resolution, buckets, token budget, caption text style
    (docs/training.md#base-models). `kind = tagger` is a tagger-training target (the WD
    `selected_tags.csv` convention: images plus a multi-label CSV) rather than a checkpoint."""

    class Kind(models.TextChoices):
        CHECKPOINT = "checkpoint", "Diffusion checkpoint"
        TAGGER = "tagger", "Tagger training target"

    class Prediction(models.TextChoices):
        EPSILON = "epsilon", "epsilon"
        V = "v_prediction", "v-prediction"

    class SourceKind(models.TextChoices):
        FILE = "file", "Single file"
        DIFFUSERS_DIR = "diffusers_dir", "diffusers folder"
        HUB = "hub", "Hugging Face Hub id"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CHECKPOINT)
    family = models.CharField(max_length=8, choices=Family.choices, default=Family.SD1)
    prediction = models.CharField(max_length=16, choices=Prediction.choices, default=Prediction.EPSILON)
    resolution = models.PositiveIntegerField(default=512)
    bucket_min = models.PositiveIntegerField(default=256)
    bucket_max = models.PositiveIntegerField(default=1024)
    bucket_step = models.PositiveIntegerField(default=64)
    onetrainer_quantum = models.PositiveIntegerField(default=8)
    max_tokens = models.PositiveSmallIntegerField(default=75)
    clip_skip = models.PositiveSmallIntegerField(default=1)
    v_parameterization = models.BooleanField(default=False)
    score_tags_prefix = models.BooleanField(
        default=False, help_text="Quality, rating and meta tags go to the prefix zone"
    )
    booru_text = models.BooleanField(default=True, help_text="Underscores become spaces in captions")
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices, default=SourceKind.FILE)
    source_ref = models.CharField(max_length=500, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)
    diffusers_ref = models.CharField(
        max_length=500, blank=True, help_text="diffusers folder or Hub id; empty: diffusers cannot train it"
    )
    vocabulary = models.ForeignKey(
        "tags.Vocabulary",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The vocabulary a fine-tune was trained on; sessions map tags into it",
    )
    mapping_profile = models.ForeignKey(
        "mappings.MappingProfile",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Default mapping profile for sessions on this model",
    )
    supported_trainers = models.JSONField(default=list, blank=True)
    seeded = models.BooleanField(default=False, editable=False, help_text="Shipped profile: not editable")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrainingSession(BaseModel):
    """One training run's settings (docs/training.md#sessions): what `session.json` holds."""

    class Method(models.TextChoices):
        LORA = "lora", "LoRA"
        FINETUNE = "finetune", "Full fine-tune"
        DREAMBOOTH = "dreambooth", "DreamBooth"

    class Crop(models.TextChoices):
        CENTER = "center", "Centre"
        RANDOM = "random", "Random"
        FOCUS = "focus", "Around the focus box"

    class Mirror(models.TextChoices):
        NEVER = "never", "Never"
        ALWAYS_RANDOM = "always_random", "Random flips for every image"
        PER_ITEM = "per_item", "Per item (flip/noflip partitions)"

    class Materialize(models.TextChoices):
        AUTO = "auto", "Where a trainer cannot do it natively"
        ALWAYS = "always", "Always"
        NEVER = "never", "Never"

    class PrefixMode(models.TextChoices):
        EXACT = "exact", "Exact"
        MERGED = "merged", "Merged"

    class KohyaMasks(models.TextChoices):
        NONE = "none", "No loss masks"
        FOCUS = "focus", "Focus box (white inside, black outside)"

    class Images(models.TextChoices):
        BUCKET = "bucket", "Resized to their bucket"
        ORIGINAL = "original", "Originals"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=40, unique=True)
    description = models.TextField(blank=True)
    seed = models.PositiveIntegerField(default=1234)
    base_model = models.ForeignKey(BaseModelProfile, on_delete=models.PROTECT, related_name="sessions")
    targets = models.JSONField(default=list, blank=True, help_text="Trainers: kohya, onetrainer, diffusers")
    mapping_profile = models.ForeignKey(
        "mappings.MappingProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # method (session.json "method")
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.LORA)
    rank = models.PositiveSmallIntegerField(default=16)
    alpha = models.PositiveSmallIntegerField(default=8)
    train_text_encoder = models.BooleanField(default=False)
    batch_size = models.PositiveSmallIntegerField(default=1)
    epochs = models.PositiveSmallIntegerField(default=10)
    learning_rate = models.FloatField(default=0.0001)
    mixed_precision = models.CharField(max_length=8, default="fp16")
    cache_latents = models.BooleanField(default=True)
    cache_text_encoder_outputs = models.BooleanField(default=False)
    masked_loss = models.BooleanField(default=False)
    extra_args = models.JSONField(default=dict, blank=True, help_text="Extra kohya args.toml keys")
    # image policy; null sizes follow the base model
    resolution = models.PositiveIntegerField(null=True, blank=True)
    bucket_min = models.PositiveIntegerField(null=True, blank=True)
    bucket_max = models.PositiveIntegerField(null=True, blank=True)
    bucket_step = models.PositiveIntegerField(null=True, blank=True)
    no_upscale = models.BooleanField(default=False)
    images = models.CharField(max_length=8, choices=Images.choices, default=Images.BUCKET)
    min_source_side = models.PositiveIntegerField(default=0)
    max_aspect = models.FloatField(default=0.0, help_text="0: no check")
    crop = models.CharField(max_length=8, choices=Crop.choices, default=Crop.CENTER)
    mirror = models.CharField(max_length=16, choices=Mirror.choices, default=Mirror.NEVER)
    mirror_block_tags = models.JSONField(
        default=default_mirror_block_tags, blank=True, help_text="Tags that keep an item from being flipped"
    )
    color_jitter = models.JSONField(null=True, blank=True)
    alpha_background = models.CharField(max_length=7, default="#ffffff")
    # caption policy
    underscores_to_spaces = models.BooleanField(null=True, blank=True, help_text="null: the base model's")
    escape_parentheses = models.BooleanField(default=False)
    shuffle = models.BooleanField(default=True)
    caption_dropout_rate = models.FloatField(default=0.0)
    materialize_mode = models.CharField(max_length=8, choices=Materialize.choices, default=Materialize.AUTO)
    materialize_variants = models.PositiveSmallIntegerField(default=12)
    max_tokens = models.PositiveSmallIntegerField(null=True, blank=True, help_text="null: the base model's")
    prefix_mode = models.CharField(max_length=8, choices=PrefixMode.choices, default=PrefixMode.EXACT)
    kohya_per_type_dropout = models.CharField(max_length=8, blank=True, default="")
    swap_directional = models.BooleanField(default=True)
    # export
    kohya_masks = models.CharField(
        max_length=8,
        choices=KohyaMasks.choices,
        default=KohyaMasks.NONE,
        help_text="kohya loss masks (masks/<partition>/, --masked_loss); docs/export-bundle.md#masks",
    )
    target_root = models.CharField(max_length=500, help_text="The bundle's place on the training machine")
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["base_model", "id"], name="tsession_base_id")]

    def __str__(self) -> str:
        return self.name


class TrainingSessionDataset(models.Model):
    """One dataset of a session (or a dataset group, expanded in order at export)."""

    class Role(models.TextChoices):
        TRAIN = "train", "Training"
        REGULARIZATION = "regularization", "Regularisation"

    class Balance(models.TextChoices):
        NONE = "", "Fixed repeats"
        EQUALIZE = "equalize", "Equalise by image count"

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="datasets")
    position = models.PositiveSmallIntegerField(default=0)
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subset = models.ForeignKey(
        "datasets.Subset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        "datasets.DatasetGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    snapshot = models.ForeignKey(
        "datasets.Snapshot",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Pinned snapshot; none: one is frozen at export",
    )
    slug = models.SlugField(max_length=40, blank=True, help_text="Id in the bundle; empty: the dataset's")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.TRAIN)
    repeats = models.PositiveSmallIntegerField(default=1)
    balance = models.CharField(max_length=10, choices=Balance.choices, blank=True, default="")
    loss_weight = models.FloatField(default=1.0)
    class_tokens = models.CharField(max_length=200, blank=True)
    overrides = models.JSONField(default=dict, blank=True, help_text="Dotted caption-policy paths")
    licence_notes = models.TextField(blank=True)

    class Meta:
        ordering = ["session", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(dataset__isnull=False, group__isnull=True)
                | models.Q(dataset__isnull=True, group__isnull=False),
                name="tsdataset_one_source",
            )
        ]
        indexes = [models.Index(fields=["dataset"], name="tsdataset_dataset")]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.position}: dataset {self.dataset_id or f'group {self.group_id}'}"


class CaptionTypePolicy(models.Model):
    """How one tag type's tags enter a session's captions (docs/training.md#caption-policy)."""

    class Zone(models.TextChoices):
        PREFIX = "prefix", "Prefix"
        FLEX = "flex", "Flexible"
        SUFFIX = "suffix", "Suffix"
        EXCLUDED = "excluded", "Excluded"

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="type_policies")
    tag_type = models.ForeignKey("tags.TagType", on_delete=models.CASCADE, related_name="+")
    zone = models.CharField(max_length=8, choices=Zone.choices, default=Zone.FLEX)
    zone_order = models.PositiveSmallIntegerField(default=0)
    drop_rate = models.FloatField(default=0.0)
    atomic = models.BooleanField(default=False)
    budget_priority = models.SmallIntegerField(default=0)
    whole_drop_rate = models.FloatField(default=0.0)

    class Meta:
        ordering = ["session", "zone_order", "id"]
        constraints = [models.UniqueConstraint(fields=["session", "tag_type"], name="ctpolicy_session_type")]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.tag_type_id} {self.zone}"


class DescriptionSetWeight(models.Model):
    """Weight of one description set (a Description kind, or a custom label) among alternates."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="description_weights")
    name = models.CharField(max_length=100, help_text="Description kind, or the label of a custom kind")
    weight = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["session", "name"]
        constraints = [models.UniqueConstraint(fields=["session", "name"], name="dsweight_session_name")]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.name} × {self.weight}"


class SampleDefinition(models.Model):
    """A sample prompt rendered during training."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="samples")
    position = models.PositiveSmallIntegerField(default=0)
    prompt = models.CharField(max_length=2000)
    negative_prompt = models.CharField(max_length=2000, blank=True)
    width = models.PositiveIntegerField(default=1024)
    height = models.PositiveIntegerField(default=1024)
    seed = models.PositiveIntegerField(default=42)
    steps = models.PositiveSmallIntegerField(default=28)
    scale = models.FloatField(default=7.0)
    sampler = models.CharField(max_length=32, default="euler_a")

    class Meta:
        ordering = ["session", "position", "id"]

    def __str__(self) -> str:
        return self.prompt[:60]


class TrainingSessionVersion(models.Model):
    """The settings of a session as they were at one version (every change bumps it)."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    frozen = models.JSONField(default=dict, help_text="Every setting of the session at this version")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "-number"]
        constraints = [models.UniqueConstraint(fields=["session", "number"], name="tsversion_session_number")]

    def __str__(self) -> str:
        return f"{self.session_id} v{self.number}"


class TextualInversion(BaseModel):
    """A Textual Inversion set: a token learned from an image set (docs/training.md#ti)."""

    class Learnable(models.TextChoices):
        OBJECT = "object", "Object"
        STYLE = "style", "Style"

    class Prompting(models.TextChoices):
        CAPTIONS = "captions", "Captions"
        OBJECT_TEMPLATES = "object_templates", "Object templates"
        STYLE_TEMPLATES = "style_templates", "Style templates"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=40, unique=True)
    token = models.CharField(max_length=40)
    init_word = models.CharField(max_length=60)
    num_vectors = models.PositiveSmallIntegerField(default=1)
    learnable = models.CharField(max_length=8, choices=Learnable.choices, default=Learnable.OBJECT)
    prompting = models.CharField(max_length=16, choices=Prompting.choices, default=Prompting.CAPTIONS)
    templates = models.JSONField(default=list, blank=True)
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subset = models.ForeignKey(
        "datasets.Subset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    query = models.CharField(max_length=2000, blank=True, help_text="Image set by query (no dataset)")
    resolution = models.PositiveIntegerField(null=True, blank=True, help_text="null: the base model's")
    repeats = models.PositiveSmallIntegerField(default=1)
    base_model = models.ForeignKey(
        BaseModelProfile, on_delete=models.PROTECT, related_name="textual_inversions"
    )
    seed = models.PositiveIntegerField(default=1234)
    targets = models.JSONField(default=list, blank=True)
    target_root = models.CharField(max_length=500)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token})"


class TrainingExport(models.Model):
    """One export of a session (or a TI set): its job, outcome and bundle."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Target(models.TextChoices):
        ZIP = "zip", "Zip download"
        FOLDER = "folder", "Server folder"

    session = models.ForeignKey(
        TrainingSession, null=True, blank=True, on_delete=models.CASCADE, related_name="exports"
    )
    textual_inversion = models.ForeignKey(
        TextualInversion, null=True, blank=True, on_delete=models.CASCADE, related_name="exports"
    )
    session_version = models.PositiveIntegerField(default=1)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    target = models.CharField(max_length=8, choices=Target.choices, default=Target.ZIP)
    folder_path = models.CharField(max_length=1000, blank=True, help_text="Server folder (target folder)")
    bundle_path = models.CharField(max_length=1000, blank=True, help_text="The finished bundle folder")
    bundle_size = models.PositiveBigIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)
    findings = models.JSONField(default=list, blank=True)
    report_excerpt = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(session__isnull=False, textual_inversion__isnull=True)
                | models.Q(session__isnull=True, textual_inversion__isnull=False),
                name="texport_one_owner",
            )
        ]
        indexes = [
            models.Index(fields=["session", "id"], name="texport_session_id"),
            models.Index(fields=["textual_inversion", "id"], name="texport_ti_id"),
            models.Index(fields=["status", "id"], name="texport_status_id"),
        ]

    def __str__(self) -> str:
        owner = f"session {self.session_id}" if self.session_id else f"TI {self.textual_inversion_id}"
        return f"export {self.pk} of {owner} ({self.status})"
