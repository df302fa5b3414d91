"""Serializers of the embedding-spaces API (docs/api.md#embedding-spaces)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.jobs.api.serializers import JobOutputSerializer
from apps.taggers.engine.clip import DEFAULT_RESIZE_MODE, RESIZE_MODES
from apps.taggers.models import EmbeddingSpace


class SpaceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    model_ref = serializers.CharField(
        max_length=500,
        help_text="`local-dir:open_clip/<name>` or `<open_clip config>|<weights file>` "
        "(paths under BAGGINTAG_MODEL_DIR)",
    )
    resize_mode = serializers.ChoiceField(choices=RESIZE_MODES, default=DEFAULT_RESIZE_MODE)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class SpaceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)


class SpaceOutputSerializer(serializers.ModelSerializer):
    embed_job = serializers.SerializerMethodField()

    class Meta:
        model = EmbeddingSpace
        fields = [
            "id",
            "name",
            "source_kind",
            "model_ref",
            "dim",
            "dtype",
            "normalized",
            "preprocess_cfg",
            "weights_sha256",
            "has_text_tower",
            "description",
            "embedding_count",
            "embed_job",
            "created_at",
            "updated_at",
        ]

    def get_embed_job(self, obj: EmbeddingSpace) -> dict[str, Any] | None:
        """The latest embed job (progress, counts, error), or null."""
        return dict(JobOutputSerializer(obj.embed_job).data) if obj.embed_job is not None else None


class EmbedInputSerializer(serializers.Serializer):
    query = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="A search query choosing the items (all when empty)",
    )
    items = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        default=list,
        max_length=100_000,
        help_text="Item ids (with query: both must match)",
    )
