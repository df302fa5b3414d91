"""Request and response shapes of the datasets API (docs/datasets.md#api)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import IdField, int_field
from apps.core.ints import BIGINT_MAX
from apps.datasets.models import Dataset, Requirements, Subset
from apps.datasets.services.datasets import MAX_NEAR_DISTANCE, REQUIREMENT_INTS
from apps.datasets.services.members import ACTIONS, MAX_IDS
from apps.media.api.serializers import MediaItemOutputSerializer


class RequirementsSerializer(serializers.Serializer):
    """Every rule is optional; null or missing means no rule (docs/datasets.md#requirements)."""

    exact_width = int_field(min_value=1, required=False, allow_null=True)
    exact_height = int_field(min_value=1, required=False, allow_null=True)
    min_width = int_field(required=False, allow_null=True)
    max_width = int_field(required=False, allow_null=True)
    min_height = int_field(required=False, allow_null=True)
    max_height = int_field(required=False, allow_null=True)
    min_short_side = int_field(required=False, allow_null=True)
    min_aspect_milli = int_field(required=False, allow_null=True, help_text="width/height × 1000")
    max_aspect_milli = int_field(required=False, allow_null=True, help_text="width/height × 1000")
    min_pixels = int_field(
        required=False, allow_null=True, max_value=BIGINT_MAX, help_text="megapixels × 10⁶"
    )
    max_pixels = int_field(
        required=False, allow_null=True, max_value=BIGINT_MAX, help_text="megapixels × 10⁶"
    )
    formats = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=50)
    modes = serializers.ListField(child=serializers.CharField(max_length=16), required=False, max_length=50)
    bit_depth = int_field(min_value=1, max_value=64, required=False, allow_null=True)
    alpha = serializers.ChoiceField(choices=Requirements.Alpha.choices, required=False)
    flatten_color = serializers.CharField(max_length=7, required=False, allow_blank=True)
    max_file_size = int_field(
        min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True, help_text="Bytes"
    )
    min_tag_count = int_field(required=False, allow_null=True)
    required_tag_types = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, max_length=50, help_text="Tag type keys"
    )
    near_duplicate_max_distance = int_field(max_value=MAX_NEAR_DISTANCE, required=False, allow_null=True)


REQUIREMENT_FIELDS = [*REQUIREMENT_INTS, "formats", "modes", "alpha", "flatten_color"]


def requirements_data(dataset: Dataset) -> dict[str, Any]:
    req = getattr(dataset, "requirements", None)
    if req is None:
        return {}
    data: dict[str, Any] = {f: getattr(req, f) for f in REQUIREMENT_FIELDS}
    data["required_tag_types"] = sorted(t.key for t in req.required_tag_types.all())
    return data


class DatasetInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    purpose = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    # checked by services.datasets.licence_notes_check (length, control characters: 400 datasets.invalid)
    licence_notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    query = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    requirements = RequirementsSerializer(required=False, help_text="Replaces every rule when given")


class DatasetOutputSerializer(serializers.ModelSerializer):
    requirements = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "purpose",
            "licence_notes",
            "query",
            "requirements",
            "created_at",
            "updated_at",
        ]

    def get_requirements(self, obj: Dataset) -> RequirementsSerializer:
        return requirements_data(obj)  # type: ignore[return-value]


class SubsetInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    query = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SubsetOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subset
        fields = ["id", "dataset", "name", "slug", "description", "query", "created_at", "updated_at"]


class ItemsInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ACTIONS)
    items = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_IDS)


class ImagesInputSerializer(serializers.Serializer):
    images = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_IDS)


class RemoveImagesInputSerializer(serializers.Serializer):
    images = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_IDS, required=False)
    query = serializers.CharField(
        required=False, max_length=2000, help_text="Remove the explicit members it matches"
    )

    def validate(self, attrs: dict) -> dict:
        if ("images" in attrs) == ("query" in attrs):
            raise serializers.ValidationError({"images": ["Give either images (ids) or query, not both."]})
        return attrs


class ItemsOutputSerializer(serializers.Serializer):
    changed = serializers.IntegerField()


class MembersOutputSerializer(serializers.Serializer):
    items = MediaItemOutputSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="Pass as `after` for the next page")


class FailureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    value = serializers.JSONField(
        help_text="The measured value (for near_duplicate: a near-duplicate member's id)"
    )


class RequirementReportSerializer(serializers.Serializer):
    requirement = serializers.CharField()
    limit = serializers.JSONField()
    count = serializers.IntegerField()
    items = FailureSerializer(many=True)
    next_after = serializers.IntegerField(allow_null=True)


class ValidationReportSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    members = serializers.IntegerField()
    failing = serializers.IntegerField(help_text="Members failing at least one requirement")
    requirements = RequirementReportSerializer(many=True)
