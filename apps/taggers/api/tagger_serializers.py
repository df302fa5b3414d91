"""Serializers of the taggers API (docs/api.md#taggers)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import IdField
from apps.jobs.api.serializers import JobOutputSerializer
from apps.taggers.models import Tagger, TaggerVersion


class TaggerInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    vocabulary = serializers.SlugField(
        max_length=64, required=False, help_text="slug; the default when omitted"
    )
    kind = serializers.ChoiceField(choices=Tagger.Kind.choices, default=Tagger.Kind.EMBEDDING_HEAD)
    embedding_space = IdField(required=False, allow_null=True, default=None)
    tag_types = serializers.ListField(
        child=serializers.SlugField(max_length=32), required=False, default=list
    )
    network_type = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    target = serializers.ChoiceField(choices=Tagger.Target.choices, default=Tagger.Target.IMAGE)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    params = serializers.DictField(required=False, default=dict)
    scope = serializers.DictField(required=False, default=dict)
    stored_threshold = serializers.FloatField(required=False, default=0.10, min_value=0.01, max_value=1.0)


class TaggerUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    network_type = serializers.CharField(required=False, allow_blank=True, max_length=32)
    params = serializers.DictField(required=False)
    scope = serializers.DictField(required=False)
    stored_threshold = serializers.FloatField(required=False, min_value=0.01, max_value=1.0)
    tag_types = serializers.ListField(child=serializers.SlugField(max_length=32), required=False)


class VersionOutputSerializer(serializers.ModelSerializer):
    job = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = TaggerVersion
        fields = [
            "id", "number", "status", "space", "artifact_dir", "artifact_sha256", "labels_sha256",
            "split_seed", "counts", "hyperparams", "library_versions", "metrics", "job", "error",
            "created_at",
        ]  # fmt: skip

    def get_job(self, obj: TaggerVersion) -> dict[str, Any] | None:
        return dict(JobOutputSerializer(obj.job).data) if obj.job is not None else None

    def get_error(self, obj: TaggerVersion) -> str | None:
        return (obj.counts or {}).get("error")


class TaggerOutputSerializer(serializers.ModelSerializer):
    vocabulary: Any = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tag_types: Any = serializers.SlugRelatedField(slug_field="key", many=True, read_only=True)
    active_version = serializers.SerializerMethodField()
    previous_version = serializers.SerializerMethodField()
    rescore_job = serializers.SerializerMethodField()

    class Meta:
        model = Tagger
        fields = [
            "id", "name", "kind", "target", "vocabulary", "embedding_space", "tag_types", "network_type",
            "description", "params", "scope", "stored_threshold", "active_version", "previous_version",
            "rescore_job", "rescore_skipped", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["rescore_skipped"]

    def get_active_version(self, obj: Tagger) -> int | None:
        """The active version's number."""
        return obj.active_version.number if obj.active_version is not None else None

    def get_previous_version(self, obj: Tagger) -> int | None:
        """The number of the version active before the current one (what rollback restores)."""
        return obj.previous_version.number if obj.previous_version is not None else None

    def get_rescore_job(self, obj: Tagger) -> dict[str, Any] | None:
        """The `taggers.score` job the last promotion or rollback queued (read-only)."""
        return dict(JobOutputSerializer(obj.rescore_job).data) if obj.rescore_job is not None else None


class TrainInputSerializer(serializers.Serializer):
    seed = serializers.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, allow_null=True, default=None
    )


class TaggerRunInputSerializer(serializers.Serializer):
    query = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    # At most 100,000 ids: the service refuses more (taggers.too_many).
    items = serializers.ListField(child=IdField(), required=False, default=None)
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)


class TaggerPromoteInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    copy_overrides = serializers.BooleanField(required=False, default=False)


class ThresholdInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)
    tag = IdField()
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0)


class ThresholdDeleteSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)
    tag = IdField()


class PredictionsQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)
    item = IdField(required=False, default=None)
    tag = IdField(required=False, default=None)
    effective = serializers.BooleanField(required=False, default=False)
    after_item = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1, default=0)
    after_tag = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1, default=0)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)


class PredictionOutputSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="media_item_id")
    tag = serializers.IntegerField(source="tag_id")
    name = serializers.CharField(source="tag.name")
    confidence = serializers.SerializerMethodField()
    threshold = serializers.SerializerMethodField()
    effective = serializers.BooleanField()

    def get_confidence(self, obj: Any) -> float:
        return (obj.confidence or 0) / 10_000

    def get_threshold(self, obj: Any) -> float:
        return obj.threshold / 10_000


class ReviewQueueQuerySerializer(serializers.Serializer):
    after = serializers.CharField(required=False, default="", max_length=80, help_text="a row's `cursor`")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)


class ReviewQueueRowSerializer(PredictionOutputSerializer):
    cursor = serializers.SerializerMethodField(help_text="pass as `after` for the rows behind this one")

    def get_cursor(self, obj: Any) -> str:
        from apps.taggers.selectors.predictions import review_cursor

        return review_cursor(obj)


class TaggerReviewInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)
    item = IdField()
    tag = IdField()


class BatchAcceptInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1, default=None)
    min_confidence = serializers.FloatField(min_value=0.0, max_value=1.0)


class AgreementOutputSerializer(serializers.Serializer):
    tag = serializers.IntegerField(source="tag_id")
    name = serializers.CharField()
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    missed = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
