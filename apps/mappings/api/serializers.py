"""API shapes for mapping sets, rules and profiles (docs/api.md#tag-mappings)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api import IdField, int_field
from apps.mappings.models import MappingProfile, MappingSet, TagMapping
from apps.mappings.services.io import FORMATS


class RuleSerializer(serializers.Serializer):
    """One rule by tag names: source (and guards) in the source vocabulary, targets in the target."""

    source = serializers.CharField(max_length=200)  # type: ignore[assignment]
    targets = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    action = serializers.ChoiceField(choices=TagMapping.Action.choices, default="map")
    requires = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    unless = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    type = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    priority = serializers.IntegerField(min_value=-32768, max_value=32767, default=0)


class RuleOutputSerializer(RuleSerializer):
    id = serializers.IntegerField()
    rule_key = serializers.CharField()


class RulesInputSerializer(serializers.Serializer):
    rules = RuleSerializer(many=True, max_length=50_000)  # type: ignore[call-arg]
    version = int_field(required=False, min_value=1, help_text="409 when the set moved on")
    create_targets = serializers.BooleanField(default=False)


class RemoveRuleSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=200)  # type: ignore[assignment]
    requires = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    unless = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RemoveInputSerializer(serializers.Serializer):
    rules = RemoveRuleSerializer(many=True, max_length=50_000)  # type: ignore[call-arg]
    version = int_field(required=False, min_value=1)


class MappingSetInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    source_vocabulary = serializers.CharField(max_length=64, help_text="slug or id")
    target_vocabulary = serializers.CharField(max_length=64, help_text="slug or id")
    rules = RuleSerializer(many=True, required=False, default=list, max_length=50_000)  # type: ignore[call-arg]
    create_targets = serializers.BooleanField(default=False)


class MappingSetReplaceSerializer(RulesInputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class MappingSetOutputSerializer(serializers.ModelSerializer):
    source_vocabulary = serializers.CharField(source="source_vocabulary.slug")
    target_vocabulary = serializers.CharField(source="target_vocabulary.slug")
    is_cleanup = serializers.BooleanField()

    class Meta:
        model = MappingSet
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "source_vocabulary",
            "target_vocabulary",
            "version",
            "is_cleanup",
            "created_at",
            "updated_at",
        ]


class MappingSetDetailSerializer(MappingSetOutputSerializer):
    rules = serializers.SerializerMethodField()
    rules_count = serializers.SerializerMethodField()

    class Meta(MappingSetOutputSerializer.Meta):
        fields = [*MappingSetOutputSerializer.Meta.fields, "rules_count", "rules"]

    def get_rules(self, obj: MappingSet) -> list[dict[str, Any]]:
        return RuleOutputSerializer(self.context.get("rules", []), many=True).data  # type: ignore[return-value]

    def get_rules_count(self, obj: MappingSet) -> int:
        return int(self.context.get("rules_count", 0))


class RulesQuerySerializer(serializers.Serializer):
    after = int_field(min_value=0, default=0, help_text="rule id of the last row seen")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    action = serializers.ChoiceField(choices=TagMapping.Action.choices, required=False)
    guarded = serializers.BooleanField(required=False, allow_null=True, default=None)
    tag = serializers.CharField(max_length=200, required=False, default="", help_text="source name prefix")


class ChangeResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
    version = serializers.IntegerField()
    rules = serializers.IntegerField(required=False)


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="CSV file (or send `text`)")
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    format = serializers.ChoiceField(choices=FORMATS, default="csv")
    replace = serializers.BooleanField(default=False)
    create_targets = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("file") and not attrs.get("text"):
            raise serializers.ValidationError({"file": ["Send a file or text."]})
        return attrs


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="csv")


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, default="", help_text="part of the slug or name")
    tag = serializers.CharField(required=False, default="", help_text="a source or target tag name")


PROFILE_FIELDS = [
    "name",
    "input_scope",
    "min_confidence",
    "unmapped_policy",
    "implication_policy",
    "drop_types",
    "type_order",
    "prefix_text",
    "separator",
    "underscore_to_space",
    "escape_parentheses",
    "max_tags",
]


class ProfileInputSerializer(serializers.ModelSerializer):
    target_vocabulary = serializers.CharField(max_length=64, help_text="slug or id")
    steps = serializers.ListField(
        child=serializers.CharField(max_length=64), help_text="mapping set slugs or ids, in order"
    )
    drop_types = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    type_order = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    version = int_field(required=False, min_value=1, write_only=True)

    class Meta:
        model = MappingProfile
        fields = ["slug", "target_vocabulary", "steps", "version", *PROFILE_FIELDS]
        extra_kwargs: dict[str, dict[str, Any]] = {"slug": {"validators": []}}


class ProfileOutputSerializer(serializers.ModelSerializer):
    target_vocabulary = serializers.CharField(source="target_vocabulary.slug")
    steps = serializers.SerializerMethodField()

    class Meta:
        model = MappingProfile
        fields = [
            "id",
            "slug",
            "target_vocabulary",
            "steps",
            "version",
            *PROFILE_FIELDS,
            "created_at",
            "updated_at",
        ]

    def get_steps(self, obj: MappingProfile) -> list[str]:
        return list(obj.steps.order_by("ord").values_list("mapping_set__slug", flat=True))


class TargetInputSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, default="", help_text="a search query")
    ids = serializers.ListField(child=IdField(), required=False, default=list)


class PreviewInputSerializer(TargetInputSerializer):
    sample = serializers.IntegerField(min_value=0, max_value=200, default=50)


class UndoInputSerializer(serializers.Serializer):
    operation = IdField()


class SuggestionsQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, default="")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
