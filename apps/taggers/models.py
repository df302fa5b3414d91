"""Taggers: embedding spaces and stored embeddings, taggers and their versions, thresholds,
review marks, regions and captions, tagging schemes and their runs (docs/taggers.md#model).

Nothing here imports the ML packages: the engine (apps/taggers/engine/) does, inside workers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel
from apps.tags.models import Tag, TagType, Vocabulary

# Confidences, scores and box coordinates are stored as integers in 1/10000 (docs/taggers.md#model).
SCALE = 10_000


def quantize(value: float) -> int:
    """A fraction in [0, 1] as an integer of 1/10000 (clamped), as Region and scores store it."""
    return max(0, min(SCALE, round(value * SCALE)))


class EmbeddingSpace(BaseModel):
    """One frozen image encoder with its exact weights and preprocessing: vectors from two spaces
    never mix (docs/taggers.md#embedding-spaces)."""

    class SourceKind(models.TextChoices):
        OPEN_CLIP = "open_clip", "open_clip"
        WD = "wd", "WD tagger embedding"

    name = models.CharField(max_length=200, unique=True)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices, default=SourceKind.OPEN_CLIP)
    model_ref = models.CharField(
        max_length=500, help_text="`local-dir:<dir under the model dir>` or `<config name>|<weights file>`"
    )
    dim = models.PositiveIntegerField()
    dtype = models.CharField(max_length=16, default="float16")
    normalized = models.BooleanField(default=True)
    preprocess_cfg = models.JSONField(default=dict, blank=True)
    preprocess_sha256 = models.CharField(max_length=64)
    weights_sha256 = models.CharField(max_length=64)
    has_text_tower = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    # Rows in ImageEmbedding (moved by embed jobs, recounted when the matrix cache rebuilds).
    embedding_count = models.PositiveBigIntegerField(default=0)
    # The latest embed job (progress on the pages); the Job row is the truth of its state.
    embed_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["weights_sha256", "preprocess_sha256"], name="embedding_space_weights_preprocess"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def blob_bytes(self) -> int:
        """The exact size of one stored vector: dim little-endian fp16 values."""
        return self.dim * 2


class ImageEmbedding(models.Model):
    """One item's vector in one space: exactly `dim × 2` bytes of little-endian fp16."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="embeddings")
    vector = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "space"], name="image_embedding_item_space"),
        ]
        indexes = [models.Index(fields=["space", "id"], name="image_embedding_space_id")]

    def __str__(self) -> str:
        return f"item {self.item_id} in space {self.space_id}"


class TextQuery(models.Model):
    """A text encoded by a space's text tower for text-to-image search (`clip:"…"`). Web
    processes never load the text tower: a worker fills `vector`; NULL means still pending
    (docs/taggers.md#text-to-image-search)."""

    id = models.BigAutoField(primary_key=True)
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    text_sha256 = models.CharField(max_length=64)
    text = models.TextField()
    vector = models.BinaryField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "text_sha256"], name="text_query_space_text"),
        ]

    def __str__(self) -> str:
        return f"{self.text[:40]!r} in space {self.space_id}"


class Tagger(BaseModel):
    """A user-defined tagger: what it tags (vocabulary, tag types, image or regions), its kind and
    network type, and which version is active (docs/taggers.md#taggers)."""

    class Target(models.TextChoices):
        IMAGE = "image", "image"
        REGION = "region", "region"

    class Kind(models.TextChoices):
        CLIP_ZEROSHOT = "clip_zeroshot", "CLIP zero-shot"
        EMBEDDING_HEAD = "embedding_head", "head on embeddings"
        WD_ONNX = "wd_onnx", "WD tagger (ONNX)"
        DETECTOR = "detector", "detector (ONNX)"
        CAPTIONER = "captioner", "captioner"

    # Used in the tagger set slot `<name>@<version>` (apps/tags/slots.py), hence a slug.
    name = models.SlugField(max_length=64, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=8, choices=Target.choices, default=Target.IMAGE)
    vocabulary = models.ForeignKey(Vocabulary, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    embedding_space = models.ForeignKey(
        EmbeddingSpace, null=True, blank=True, on_delete=models.PROTECT, related_name="taggers"
    )
    model_dir = models.CharField(
        max_length=500, blank=True, help_text="wd_onnx/detector/captioner: relative to BAGGINTAG_MODEL_DIR"
    )
    tag_types = models.ManyToManyField(TagType, blank=True, related_name="+", help_text="What it tags")
    network_type = models.CharField(max_length=32, blank=True, help_text='e.g. "linear", "mlp", "vit"')
    description = models.TextField(blank=True)
    # Kind-specific settings: templates and prompt names, endpoint URL/model/timeout, precision
    # target, hyperparameters (docs/taggers.md#taggers).
    params = models.JSONField(default=dict, blank=True)
    # Which items it learns from and applies to by default (dataset ids, a query).
    scope = models.JSONField(default=dict, blank=True)
    stored_threshold = models.FloatField(default=0.10, help_text="Scores below this are not stored")
    active_version = models.ForeignKey(
        "TaggerVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept by promotion and rollback, never by the user: outside `params`, so saving params keeps
    # them (docs/taggers.md#re-scoring-on-promotion).
    previous_version = models.ForeignKey(
        "TaggerVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version active before the current one (what rollback restores)",
    )
    rescore_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The taggers.score job the last promotion or rollback queued",
    )
    rescore_skipped = models.CharField(
        max_length=300, blank=True, help_text="Why the last promotion queued no re-score"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TaggerVersion(BaseModel):
    """One trained (or provisioned) state of a tagger with its artifacts and metrics. A `ready`
    version is frozen: only `status → retired` may change (docs/taggers.md#versions)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        TRAINING = "training", "training"
        READY = "ready", "ready"
        FAILED = "failed", "failed"
        RETIRED = "retired", "retired"

    FROZEN_FIELDS: ClassVar[tuple[str, ...]] = (
        "tagger_id",
        "number",
        "space_id",
        "artifact_dir",
        "artifact_sha256",
        "labels_sha256",
        "split_seed",
        "counts",
        "hyperparams",
        "library_versions",
        "metrics",
    )

    tagger = models.ForeignKey(Tagger, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    space = models.ForeignKey(
        EmbeddingSpace, null=True, blank=True, on_delete=models.PROTECT, related_name="tagger_versions"
    )
    artifact_dir = models.CharField(max_length=500, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    labels_sha256 = models.CharField(max_length=64, blank=True)
    split_seed = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    hyperparams = models.JSONField(default=dict, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["tagger", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tagger", "number"], name="tagger_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.tagger_id}@{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            self._check_frozen()
        super().save(*args, **kwargs)

    def _check_frozen(self) -> None:
        stored = TaggerVersion.objects.filter(pk=self.pk).values(*self.FROZEN_FIELDS, "status").first()
        if stored is None or stored["status"] not in (self.Status.READY, self.Status.RETIRED):
            return
        changed = [name for name in self.FROZEN_FIELDS if stored[name] != getattr(self, name)]
        allowed_status = {stored["status"], self.Status.RETIRED}
        if changed or self.status not in allowed_status:
            from apps.taggers.engine.base import VersionFrozen

            raise VersionFrozen(
                f"Tagger version {self} is {stored['status']} and cannot change "
                f"({', '.join(changed) or 'status → ' + self.status}); train a new version instead."
            )


class LabelChanges(models.Model):
    """Curated label changes on a head tagger's tags since its last training was queued, and when
    the debounced retrain is due (docs/taggers.md#debounced-retraining)."""

    tagger = models.OneToOneField(Tagger, on_delete=models.CASCADE, primary_key=True, related_name="+")
    changes = models.PositiveBigIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tagger_id}: {self.changes} changes"


class TaggerThreshold(models.Model):
    """The effective per-tag threshold of a version, materialised from `thresholds.json`."""

    id = models.BigAutoField(primary_key=True)
    version = models.ForeignKey(TaggerVersion, on_delete=models.CASCADE, related_name="thresholds")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    threshold = models.FloatField()
    method = models.CharField(max_length=32, blank=True, help_text="max_f1, precision_target, mcut, …")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "tag"], name="tagger_threshold_version_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.tag_id} ≥ {self.threshold}"


class ThresholdOverride(BaseModel):
    """A person's threshold for one tag of one version; mutable, outside the artifact."""

    version = models.ForeignKey(TaggerVersion, on_delete=models.CASCADE, related_name="overrides")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    threshold = models.FloatField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "tag"], name="threshold_override_version_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.tag_id} ≥ {self.threshold} (override)"


class ReviewMark(models.Model):
    """A person reviewed every tag of this type on this item: a missing curated tag of the type
    is then a true negative for training (docs/taggers.md#labels)."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    tag_type = models.ForeignKey(TagType, on_delete=models.CASCADE, related_name="+")
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "tag_type"], name="review_mark_item_type"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} reviewed for {self.tag_type_id}"


class Region(models.Model):
    """A box a detector found on an item. Coordinates are fractions of the width/height stored as
    integers of 1/10000 (`quantize`), so the same box found twice is one row."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    tagger_version = models.ForeignKey(TaggerVersion, on_delete=models.CASCADE, related_name="regions")
    x0 = models.PositiveSmallIntegerField(help_text="1/10000 of the width")
    y0 = models.PositiveSmallIntegerField(help_text="1/10000 of the height")
    x1 = models.PositiveSmallIntegerField(help_text="1/10000 of the width")
    y1 = models.PositiveSmallIntegerField(help_text="1/10000 of the height")
    label = models.CharField(max_length=200, blank=True)
    score = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "tagger_version", "x0", "y0", "x1", "y1"], name="region_item_version_box"
            ),
        ]
        indexes = [models.Index(fields=["tagger_version", "item"], name="region_version_item")]

    def __str__(self) -> str:
        return f"item {self.item_id} [{self.x0},{self.y0},{self.x1},{self.y1}] {self.label}"

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) as fractions in [0, 1]."""
        return (self.x0 / SCALE, self.y0 / SCALE, self.x1 / SCALE, self.y1 / SCALE)


class RegionEmbedding(models.Model):
    """One region's vector in one space (like ImageEmbedding)."""

    id = models.BigAutoField(primary_key=True)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="region_embeddings")
    vector = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["region", "space"], name="region_embedding_region_space"),
        ]
        indexes = [models.Index(fields=["space", "id"], name="region_embedding_space_id")]

    def __str__(self) -> str:
        return f"region {self.region_id} in space {self.space_id}"


class Caption(models.Model):
    """Text a captioner wrote for an item or one of its regions. `region_key` is the region id or
    0 for the whole image: the UNIQUE cannot rely on NULL, which MariaDB treats as distinct."""

    id = models.BigAutoField(primary_key=True)
    item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    region_key = models.BigIntegerField(default=0, help_text="region id, 0 = whole image")
    tagger_version = models.ForeignKey(TaggerVersion, on_delete=models.CASCADE, related_name="captions")
    text = models.TextField()
    prompt_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "region_key", "tagger_version", "prompt_sha256"],
                name="caption_item_region_version_prompt",
            ),
        ]
        indexes = [models.Index(fields=["tagger_version", "item"], name="caption_version_item")]

    def __str__(self) -> str:
        return f"caption of item {self.item_id}/{self.region_key}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.region_key = self.region_id or 0
        super().save(*args, **kwargs)


class TaggingScheme(BaseModel):
    """A named DAG of tagger steps (docs/taggers.md#schemes); its definitions are immutable."""

    name = models.SlugField(max_length=64, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True)
    scope = models.JSONField(default=dict, blank=True)
    current_definition = models.ForeignKey(
        "SchemeDefinition", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SchemeDefinition(models.Model):
    """One immutable version of a scheme's steps (JSON body and its sha256)."""

    scheme = models.ForeignKey(TaggingScheme, on_delete=models.CASCADE, related_name="definitions")
    body = models.JSONField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scheme", "sha256"], name="scheme_definition_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.scheme_id}:{self.sha256[:12]}"


class SchemeRun(models.Model):
    """One run of a scheme over a selection of items."""

    class Selection(models.TextChoices):
        ALL = "all", "all in scope"
        NEW_SINCE_LAST = "new_since_last", "new since the last run"
        EXPLICIT = "explicit", "explicit items or query"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        PARTIAL = "partial", "partial"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.PENDING, Status.RUNNING)

    scheme = models.ForeignKey(TaggingScheme, on_delete=models.CASCADE, related_name="runs")
    definition = models.ForeignKey(SchemeDefinition, on_delete=models.PROTECT, related_name="runs")
    selection = models.CharField(max_length=16, choices=Selection.choices, default=Selection.ALL)
    item_ids = models.JSONField(default=list, blank=True)
    query = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="force, dataset, intake entry, …")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    counts = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["scheme", "status"], name="scheme_run_scheme_status")]

    def __str__(self) -> str:
        return f"{self.scheme_id} run {self.pk} ({self.status})"


class StepRun(models.Model):
    """One step of a scheme run: the tagger version it resolved to and its progress."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        PARTIAL = "partial", "partial"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"

    run = models.ForeignKey(SchemeRun, on_delete=models.CASCADE, related_name="steps")
    step_key = models.CharField(max_length=64)
    resolved_version = models.ForeignKey(
        TaggerVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The job working through this step's items (progress on the run page; docs/taggers.md#schemes).
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step_key"], name="step_run_run_key"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step_key} ({self.status})"


class SchemeSchedule(BaseModel):
    """Re-run a scheme on a crontab (django_celery_beat's, editable in admin); `schemes.tick`
    creates the due runs (docs/taggers.md#schedules)."""

    scheme = models.ForeignKey(TaggingScheme, on_delete=models.CASCADE, related_name="schedules")
    crontab = models.ForeignKey(
        "django_celery_beat.CrontabSchedule", on_delete=models.PROTECT, related_name="+"
    )
    selection = models.CharField(
        max_length=16, choices=SchemeRun.Selection.choices, default=SchemeRun.Selection.NEW_SINCE_LAST
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(
        SchemeRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="scheme_schedule_due")]

    def __str__(self) -> str:
        return f"{self.scheme_id} on {self.crontab_id}"


class StepOutput(models.Model):
    """A tagger version has processed an item for one input fingerprint (its step's input, params,
    prompt and the resolved versions upstream): written in the same transaction as the outputs,
    so a step skips exactly the items already done, and a detector that found no box or a WD
    run that selected no tag still counts as done (docs/taggers.md#idempotency)."""

    id = models.BigAutoField(primary_key=True)
    tagger_version = models.ForeignKey(TaggerVersion, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey("media.MediaItem", on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)
    # Kind extras: WD's four rating scores and the marked (argmax) one.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tagger_version", "fingerprint", "item"], name="step_output_version_input_item"
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} done by {self.tagger_version_id} ({self.fingerprint[:12]})"
