"""Request and response shapes of the training API (docs/training.md#api). Nested settings
(datasets, policies, weights, samples) are checked by the services, which name the field."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import int_field
from apps.jobs.api.serializers import JobOutputSerializer
from apps.training.models import (
    BaseModelProfile,
    Family,
    TextualInversion,
    TrainingExport,
    TrainingSession,
    TrainingSessionVersion,
)
from apps.training.selectors import session_detail
from apps.training.services.base_models import FIELDS as BASE_MODEL_FIELDS
from apps.training.services.checks import FIELDS as SESSION_FIELDS

REF = serializers.CharField(max_length=100, help_text="An id or a slug")


def _ref(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=100, help_text="An id or a slug", **kwargs)


class TrainingDatasetEntrySerializer(serializers.Serializer):
    dataset = serializers.JSONField(required=False, help_text="Dataset id or slug (or give group)")
    subset = serializers.JSONField(required=False, help_text="Subset id or slug of that dataset")
    group = serializers.JSONField(required=False, help_text="Dataset group id or slug")
    snapshot = serializers.JSONField(required=False, help_text="Pinned snapshot id; none: frozen at export")
    slug = serializers.CharField(required=False, allow_blank=True, max_length=40)
    role = serializers.ChoiceField(choices=["train", "regularization"], required=False)
    repeats = int_field(min_value=1, max_value=10_000, required=False)
    balance = serializers.ChoiceField(choices=["", "equalize"], required=False)
    loss_weight = serializers.FloatField(required=False)
    class_tokens = serializers.CharField(required=False, allow_blank=True, max_length=200)
    overrides = serializers.DictField(required=False, help_text="Dotted caption-policy paths → values")
    licence_notes = serializers.CharField(required=False, allow_blank=True, max_length=20_000)


class TrainingSessionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=40, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    base_model = _ref()
    mapping_profile = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    seed = int_field(required=False)
    targets = serializers.ListField(child=serializers.CharField(max_length=20), required=False, max_length=10)
    datasets = serializers.ListField(child=serializers.DictField(), required=False, max_length=50)
    type_policies = serializers.DictField(child=serializers.DictField(), required=False)
    description_weights = serializers.DictField(child=serializers.IntegerField(), required=False)
    samples = serializers.ListField(child=serializers.DictField(), required=False, max_length=50)
    method = serializers.ChoiceField(choices=TrainingSession.Method.choices, required=False)
    rank = int_field(min_value=1, max_value=1024, required=False)
    alpha = int_field(min_value=0, max_value=1024, required=False)
    train_text_encoder = serializers.BooleanField(required=False)
    batch_size = int_field(min_value=1, max_value=1024, required=False)
    epochs = int_field(min_value=1, max_value=10_000, required=False)
    learning_rate = serializers.FloatField(required=False)
    mixed_precision = serializers.ChoiceField(choices=["no", "fp16", "bf16"], required=False)
    cache_latents = serializers.BooleanField(required=False)
    cache_text_encoder_outputs = serializers.BooleanField(required=False)
    masked_loss = serializers.BooleanField(required=False)
    extra_args = serializers.DictField(required=False, help_text="Extra kohya args.toml keys")
    resolution = int_field(min_value=64, max_value=8192, required=False, allow_null=True)
    bucket_min = int_field(min_value=64, max_value=8192, required=False, allow_null=True)
    bucket_max = int_field(min_value=64, max_value=16384, required=False, allow_null=True)
    bucket_step = int_field(min_value=8, max_value=1024, required=False, allow_null=True)
    no_upscale = serializers.BooleanField(required=False)
    images = serializers.ChoiceField(choices=TrainingSession.Images.choices, required=False)
    min_source_side = int_field(max_value=16384, required=False)
    max_aspect = serializers.FloatField(required=False)
    crop = serializers.ChoiceField(choices=TrainingSession.Crop.choices, required=False)
    mirror = serializers.ChoiceField(choices=TrainingSession.Mirror.choices, required=False)
    mirror_block_tags = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=200
    )
    color_jitter = serializers.DictField(child=serializers.FloatField(), required=False, allow_null=True)
    alpha_background = serializers.CharField(max_length=7, required=False)
    underscores_to_spaces = serializers.BooleanField(required=False, allow_null=True)
    escape_parentheses = serializers.BooleanField(required=False)
    shuffle = serializers.BooleanField(required=False)
    caption_dropout_rate = serializers.FloatField(required=False)
    materialize_mode = serializers.ChoiceField(choices=TrainingSession.Materialize.choices, required=False)
    materialize_variants = int_field(min_value=1, max_value=64, required=False)
    max_tokens = int_field(
        required=False, allow_null=True, help_text="75, 150 or 225 (kohya); null: the model's"
    )
    prefix_mode = serializers.ChoiceField(choices=TrainingSession.PrefixMode.choices, required=False)
    kohya_per_type_dropout = serializers.ChoiceField(choices=["", "wildcard"], required=False)
    swap_directional = serializers.BooleanField(required=False)
    kohya_masks = serializers.ChoiceField(
        choices=TrainingSession.KohyaMasks.choices,
        required=False,
        help_text="kohya loss masks from the items' focus boxes (docs/export-bundle.md#masks)",
    )
    target_root = serializers.CharField(max_length=500, required=False)


class TrainingSessionDatasetOutputSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(source="dataset_id", allow_null=True)
    dataset_slug = serializers.CharField(source="dataset.slug", default=None, allow_null=True)
    subset = serializers.IntegerField(source="subset_id", allow_null=True)
    group = serializers.IntegerField(source="group_id", allow_null=True)
    snapshot = serializers.IntegerField(source="snapshot_id", allow_null=True)
    slug = serializers.CharField()
    role = serializers.CharField()
    repeats = serializers.IntegerField()
    balance = serializers.CharField()
    loss_weight = serializers.FloatField()
    class_tokens = serializers.CharField()
    overrides = serializers.DictField()
    licence_notes = serializers.CharField()


class TrainingSamplesOutputSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    negative_prompt = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    seed = serializers.IntegerField()
    steps = serializers.IntegerField()
    scale = serializers.FloatField()
    sampler = serializers.CharField()


# The settings a version records (services.checks.FIELDS), framed by identity and timestamps.
SESSION_OUTPUT_FIELDS = [
    "id",
    *SESSION_FIELDS[:3],
    "version",
    *SESSION_FIELDS[3:],
    "created_at",
    "updated_at",
]


class TrainingSessionOutputSerializer(serializers.ModelSerializer):
    base_model = serializers.CharField(source="base_model.slug")
    mapping_profile = serializers.CharField(source="mapping_profile.slug", default=None, allow_null=True)
    detail = serializers.SerializerMethodField(
        help_text="datasets, type_policies, description_weights, samples"
    )

    class Meta:
        model = TrainingSession
        fields = [*SESSION_OUTPUT_FIELDS, "base_model", "mapping_profile", "detail"]

    def get_detail(self, obj: TrainingSession) -> dict[str, Any]:
        if not self.context.get("detail"):
            return {}
        rows = session_detail(session=obj)
        return {
            "datasets": TrainingSessionDatasetOutputSerializer(rows["datasets"], many=True).data,
            "type_policies": {
                p.tag_type.key: {
                    "zone": p.zone,
                    "zone_order": p.zone_order,
                    "drop_rate": p.drop_rate,
                    "atomic": p.atomic,
                    "budget_priority": p.budget_priority,
                    "whole_drop_rate": p.whole_drop_rate,
                }
                for p in rows["type_policies"]
            },
            "description_weights": {w.name: w.weight for w in rows["description_weights"]},
            "samples": TrainingSamplesOutputSerializer(rows["samples"], many=True).data,
        }


class TrainingSessionVersionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingSessionVersion
        fields = ["number", "frozen", "created_at"]


class BaseModelInputSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    kind = serializers.ChoiceField(choices=BaseModelProfile.Kind.choices, required=False)
    family = serializers.ChoiceField(choices=Family.choices)
    prediction = serializers.ChoiceField(choices=BaseModelProfile.Prediction.choices, required=False)
    resolution = int_field(min_value=64, max_value=8192, required=False)
    bucket_min = int_field(min_value=64, max_value=8192, required=False)
    bucket_max = int_field(min_value=64, max_value=16384, required=False)
    bucket_step = int_field(min_value=8, max_value=1024, required=False)
    onetrainer_quantum = int_field(min_value=1, max_value=1024, required=False)
    max_tokens = int_field(required=False)
    clip_skip = int_field(min_value=1, max_value=12, required=False)
    v_parameterization = serializers.BooleanField(required=False)
    score_tags_prefix = serializers.BooleanField(required=False)
    booru_text = serializers.BooleanField(required=False)
    source_kind = serializers.ChoiceField(choices=BaseModelProfile.SourceKind.choices, required=False)
    source_ref = serializers.CharField(max_length=500, required=False, allow_blank=True)
    source_sha256 = serializers.CharField(max_length=64, required=False, allow_blank=True)
    diffusers_ref = serializers.CharField(max_length=500, required=False, allow_blank=True)
    vocabulary = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    mapping_profile = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    supported_trainers = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=10
    )


class BaseModelOutputSerializer(serializers.ModelSerializer):
    vocabulary = serializers.CharField(source="vocabulary.slug", default=None, allow_null=True)
    mapping_profile = serializers.CharField(source="mapping_profile.slug", default=None, allow_null=True)

    class Meta:
        model = BaseModelProfile
        fields = ["id", *BASE_MODEL_FIELDS, "seeded", "created_at", "updated_at"]


class TextualInversionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=40, required=False, allow_blank=True)
    base_model = _ref()
    token = serializers.CharField(max_length=40)
    init_word = serializers.CharField(max_length=60)
    num_vectors = int_field(min_value=1, max_value=75, required=False)
    learnable = serializers.ChoiceField(choices=TextualInversion.Learnable.choices, required=False)
    prompting = serializers.ChoiceField(choices=TextualInversion.Prompting.choices, required=False)
    templates = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=100
    )
    dataset = serializers.CharField(max_length=100, required=False, allow_null=True)
    subset = serializers.CharField(max_length=100, required=False, allow_null=True)
    query = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    resolution = int_field(min_value=64, max_value=4096, required=False, allow_null=True)
    repeats = int_field(min_value=1, max_value=10_000, required=False)
    seed = int_field(required=False)
    targets = serializers.ListField(child=serializers.CharField(max_length=20), required=False, max_length=10)
    target_root = serializers.CharField(max_length=500, required=False)


class TextualInversionOutputSerializer(serializers.ModelSerializer):
    base_model = serializers.CharField(source="base_model.slug")

    class Meta:
        model = TextualInversion
        fields = [
            "id",
            "name",
            "slug",
            "token",
            "init_word",
            "num_vectors",
            "learnable",
            "prompting",
            "templates",
            "dataset",
            "subset",
            "query",
            "resolution",
            "repeats",
            "base_model",
            "seed",
            "targets",
            "target_root",
            "version",
            "created_at",
            "updated_at",
        ]


class TrainingExportInputSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=TrainingExport.Target.choices, required=False)
    folder = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        help_text="With target folder: under the allowed root",
    )


class TrainingExportOutputSerializer(serializers.ModelSerializer):
    job = JobOutputSerializer(read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingExport
        fields = [
            "id",
            "session",
            "textual_inversion",
            "session_version",
            "status",
            "target",
            "folder_path",
            "bundle_size",
            "item_count",
            "findings",
            "report_excerpt",
            "error_code",
            "error_message",
            "job",
            "download_url",
            "created_at",
            "finished_at",
        ]

    def get_download_url(self, obj: TrainingExport) -> str | None:
        if obj.status != TrainingExport.Status.SUCCEEDED or obj.target != TrainingExport.Target.ZIP:
            return None
        return f"/api/training-exports/{obj.pk}/download"


class TrainingExportAcceptedSerializer(serializers.Serializer):
    export = TrainingExportOutputSerializer()
    job = JobOutputSerializer()


class TrainingLintOutputSerializer(serializers.Serializer):
    findings = serializers.ListField(child=serializers.DictField(), allow_null=True)
    total = serializers.IntegerField(required=False)
    item_count = serializers.IntegerField(required=False)
    version = serializers.IntegerField(required=False)
    job = JobOutputSerializer(allow_null=True)
